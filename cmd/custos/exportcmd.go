package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/httpapi"
)

func newExportCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain, format, out string
	var from, to uint64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the chain offline as JSONL (verifiable) or CSV",
		Long: `export opens the data folder read-only (stop the server first) and writes the
chain, or the range --from-seq..--to-seq, to --out (or stdout).

JSONL follows docs/export-format.md, the same lines as GET /v1/audit/export:
every line carries what recomputes its hash, so custos verify --export FILE
(or any JSON parser and SHA-256) checks it with no database.

A whole-chain JSONL export to --out also writes the chain's latest signed
checkpoint beside it, as FILE.checkpoint, when the store has one (the store
signs one in every commit): with the verifier key alone an auditor checks
that the file holds exactly the signed tree,
  custos verify --export FILE --checkpoint FILE.checkpoint --vkey KEY
so that a file cut short or rewritten is caught even with recomputed hashes.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" && format != "csv" {
				return fmt.Errorf("--format must be jsonl or csv, got %q", format)
			}
			s, err := openReadOnly(dataDir, newLogger(stderr, slog.LevelWarn))
			if err != nil {
				return err
			}
			defer s.Close()
			w := stdout
			if out != "" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
				if err != nil {
					return fmt.Errorf("create %s: %w", out, err)
				}
				defer f.Close()
				w = f
			}
			head, err := s.Head(chain)
			if err != nil {
				return err
			}
			bar := startProgress(stderr, "exported", head.Seq)
			defer bar.Stop()
			bw := bufio.NewWriterSize(w, 256<<10)
			if format == "jsonl" {
				_, err = export.Write(cmd.Context(), progressWriter{bw, bar}, s, chain, from, to, export.JSONPayload)
			} else {
				err = writeCSV(cmd, bw, s, chain, from, to, bar)
			}
			if err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			if f, ok := w.(*os.File); ok && out != "" {
				if err := f.Sync(); err != nil {
					return err
				}
			}
			if out == "" || format != "jsonl" || from > 1 || to != 0 {
				return nil
			}
			return writeCheckpointBeside(cmd, s, chain, out+".checkpoint", stderr)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant) to export")
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	cmd.Flags().StringVar(&out, "out", "", "file to create (must not exist); default stdout")
	cmd.Flags().Uint64Var(&from, "from-seq", 1, "first seq to export")
	cmd.Flags().Uint64Var(&to, "to-seq", 0, "last seq to export (0: the head)")
	return cmd
}

// progressWriter counts JSONL lines for the progress bar.
type progressWriter struct {
	w   io.Writer
	bar *progress
}

func (p progressWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\n' {
			p.bar.Add(1)
		}
	}
	return p.w.Write(b)
}

func writeCSV(cmd *cobra.Command, w io.Writer, s *eventstore.Store, chain string, from, to uint64, bar *progress) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(httpapi.CSVHeader); err != nil {
		return err
	}
	err := s.Records(cmd.Context(), chain, from, to, func(r eventstore.Record) error {
		bar.Add(1)
		return cw.Write(httpapi.CSVSafe(httpapi.CSVRow(r)))
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return errors.Join(errors.New("write csv"), err)
	}
	return nil
}

// writeCheckpointBeside writes chain's latest signed checkpoint to file. It
// covers at most the durable head, which the whole-chain export ends at, so
// the export contains and extends it. A store without checkpoints gets
// none, with a line on stderr saying so.
func writeCheckpointBeside(cmd *cobra.Command, s *eventstore.Store, chain, file string, stderr io.Writer) error {
	note, err := s.SignedCheckpoint(cmd.Context(), chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		fmt.Fprintf(stderr, "custos: the store has no signed checkpoint; %s not written\n", file)
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", file, err)
	}
	if _, err := f.Write(note); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	return errors.Join(f.Sync(), f.Close())
}
