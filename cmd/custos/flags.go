package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/custos-dev/custos/httpapi"
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

// addLimitFlags adds serve's flags for what clients can hold of the server
// (httpapi.Limits; docs/runbook.md lists the defaults).
func addLimitFlags(cmd *cobra.Command, l *httpapi.Limits) {
	f := cmd.Flags()
	f.DurationVar(&l.ReadHeaderTimeout, "read-header-timeout", httpapi.DefaultReadHeaderTimeout, "how long a client may take to send a request's line and headers (then 408)")
	f.DurationVar(&l.BodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "how long a client may take to send a request body once its headers are in (then 408)")
	f.DurationVar(&l.WriteTimeout, "write-timeout", httpapi.DefaultWriteTimeout, "how long each write of a response may wait for the client to read; per write, so exports stream on")
	f.DurationVar(&l.IdleTimeout, "idle-timeout", httpapi.DefaultIdleTimeout, "close a keep-alive connection idle this long")
	f.IntVar(&l.MaxHeaderBytes, "max-header-bytes", httpapi.DefaultMaxHeaderBytes, "largest request line and headers, in bytes (then 431)")
	f.IntVar(&l.MaxConnections, "max-connections", 0, fmt.Sprintf("most client connections open at once, beyond which a connection gets a fast 503; 0: %d or what the open-file limit leaves the store, whichever is lower", httpapi.DefaultMaxConnections))
	f.IntVar(&l.MaxInFlight, "max-in-flight", httpapi.DefaultMaxInFlight, "most requests handled at once, beyond which a request gets a fast 503")
	f.IntVar(&l.MaxActive, "max-active", httpapi.DefaultMaxActive, "most keyed requests worked on at once; the others wait, each free slot going to the tenants in turn")
	f.IntVar(&l.TenantMaxActive, "tenant-max-active", 0, "most of one tenant's requests worked on at once while another tenant has requests too (a tenant alone may use all of --max-active); 0: 3. Each group commit carries about this many of the tenant's decisions, so on a disk with slow fsyncs raise it if one tenant's throughput beside others matters more than their isolation (docs/tenants.md)")
	f.IntVar(&l.TenantMaxInFlight, "tenant-max-in-flight", 0, "most requests of one tenant's keys handled at once, beyond which its requests get a fast 429, so one tenant's flood leaves room to the others; 0: half of --max-in-flight")
}
