package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/readside"
)

// errViolations makes audit check exit 1 after printing its report.
var errViolations = errors.New("the log holds authorization violations")

func newAuditCheckCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Fold a data folder's log and report every authorization violation",
		Long: `check opens the data folder read-only (stop the server first, or check a
backup), folds the whole log from genesis with the same rules the server
applies when it orders a change, and prints a JSON report on stdout listing:

  actor_invalid         a record whose actor key was unknown, revoked or
                        expired at that record's time
  actor_scope           a record whose actor key's scope does not allow it
  allow_by_invalid_key  an ALLOW decision by a key revoked or expired then
  no_active_admin       a record after which no admin key was active

It checks authorization, not integrity: run custos verify for the hash chain.

Exit codes: 0 no violation, 1 violations (listed), 2 the check could not run.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openReadOnly(dataDir, newLogger(stderr, slog.LevelWarn))
			if err != nil {
				return err
			}
			defer s.Close()
			report, err := readside.CheckAuthorization(cmd.Context(), s, chain)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(report); err != nil {
				return err
			}
			if len(report.Violations) > 0 {
				return withCode(1, errViolations)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant) to check")
	return cmd
}
