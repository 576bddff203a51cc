package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

// errChainBroken makes verify exit 1 after printing its report.
var errChainBroken = errors.New("chain is broken")

func newVerifyCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Replay the hash chain from genesis and report the first broken event",
		Long: `verify opens the data folder read-only (stop the server first), replays the
chain from genesis, checks every hash, link and sequence number and the stored
head, and prints the report as JSON on stdout.

Exit codes: 0 the chain is valid, 1 the chain is broken (the report names the
first broken event), 2 verify could not run (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(stderr, slog.LevelWarn)
			s, err := openReadOnly(dataDir, logger)
			if err != nil {
				return err
			}
			defer s.Close()
			report, err := verify.Store(cmd.Context(), s, chain)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(report); err != nil {
				return err
			}
			if !report.Valid {
				return withCode(1, errChainBroken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant) to verify")
	return cmd
}
