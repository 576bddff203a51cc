package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

// errChainBroken makes verify exit 1 after printing its report.
var errChainBroken = errors.New("chain is broken")

func newVerifyCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain, exportFile string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Replay the hash chain from genesis and report the first broken event",
		Long: `verify checks a hash chain and prints the report as JSON on stdout.

With --data DIR it opens the data folder read-only (stop the server first),
replays the chain from genesis, and checks every hash, link and sequence
number and the stored head. With --export FILE it checks a JSONL export
(docs/export-format.md) offline with no database; a range that does not start
at genesis is checked from its first prev_hash, which the report names as the
anchor. A malformed line is reported as broken at that line.

Exit codes: 0 the chain is valid, 1 the chain is broken (the report names the
first broken event), 2 verify could not run (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			var report verify.Report
			var err error
			if exportFile != "" {
				if cmd.Flags().Changed("data") {
					return errors.New("give either --data or --export, not both")
				}
				report, err = verifyExport(cmd.Context(), exportFile, stderr)
			} else {
				report, err = verifyData(cmd.Context(), dataDir, chain, stderr)
			}
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
	cmd.Flags().StringVar(&exportFile, "export", "", "JSONL export file to verify offline instead of a data folder")
	return cmd
}

func verifyData(ctx context.Context, dir, chain string, stderr io.Writer) (verify.Report, error) {
	s, err := openReadOnly(dir, newLogger(stderr, slog.LevelWarn))
	if err != nil {
		return verify.Report{}, err
	}
	defer s.Close()
	head, err := s.Head(chain)
	if err != nil {
		return verify.Report{}, err
	}
	bar := startProgress(stderr, "verified", head.Seq)
	defer bar.Stop()
	last := uint64(0)
	return verify.Store(ctx, s, chain, verify.OnProgress(func(n uint64) { bar.Add(n - last); last = n }))
}

func verifyExport(ctx context.Context, file string, stderr io.Writer) (verify.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return verify.Report{}, fmt.Errorf("open export: %w", err)
	}
	defer f.Close()
	bar := startProgress(stderr, "verified lines", 0)
	defer bar.Stop()
	last := uint64(0)
	return verify.Export(ctx, f, verify.OnProgress(func(n uint64) { bar.Add(n - last); last = n }))
}
