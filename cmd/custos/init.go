package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

func newInitCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a store and its first admin key",
		Long: `init creates a new store in --data and a first admin key, and prints only that
key on stdout, so that KEY=$(custos init --data DIR) works. The key is shown
once; the store keeps only its SHA-256.

On a folder that already holds a store with events, init changes nothing and
exits 1.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, _, err := bootstrap(cmd.Context(), dataDir, newLogger(stderr, slog.LevelWarn))
			if errors.Is(err, errAlreadyInitialised) {
				return withCode(1, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, key)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	return cmd
}
