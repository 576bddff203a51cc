package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/projections/readside"
)

func newReplayCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain, at string
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Print the keys, policies and agents as they were at an instant",
		Long: `replay opens the data folder read-only (stop the server first), folds every
key, policy and agent change up to --at (RFC 3339) with the same Apply as the
live server, and prints the tables as JSON in the shapes of GET /v1/keys,
/v1/policies and /v1/agents (is_active computed at that instant). A time
before genesis prints empty tables.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			instant, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				return fmt.Errorf("--at must be an RFC 3339 time such as 2030-01-31T12:00:00Z: %w", err)
			}
			s, err := openReadOnly(dataDir, newLogger(stderr, slog.LevelWarn))
			if err != nil {
				return err
			}
			defer s.Close()
			index, err := readside.NewIndex(s, chain, newLogger(stderr, slog.LevelWarn))
			if err != nil {
				return err
			}
			state, err := index.ReplayAt(cmd.Context(), instant)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(httpapi.TablesAt(state, instant))
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant)")
	cmd.Flags().StringVar(&at, "at", "", "instant to replay to, RFC 3339 (required)")
	_ = cmd.MarkFlagRequired("at")
	return cmd
}
