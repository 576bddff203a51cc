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
(or any JSON parser and SHA-256) checks it with no database.`,
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
				return f.Sync()
			}
			return nil
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
