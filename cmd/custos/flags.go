package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Defaults of the server-side flags.
const (
	defaultDataDir = "./custos-data"
	defaultAddr    = "127.0.0.1:8080"
)

// bindEnv lets every flag of cmd that was not given on the command line be set
// from CUSTOS_<FLAG> (upper case, '-' as '_'). Call it from PreRunE.
func bindEnv(cmd *cobra.Command) error {
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := "CUSTOS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", env, v, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("invalid environment: %s", strings.Join(errs, "; "))
	}
	return nil
}
