package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/httpapi"
)

func newExportCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain, format, out, cosigned string
	var from, to uint64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the chain offline as JSONL (verifiable) or CSV",
		Long: `export opens the data folder read-only (stop the server first) and writes the
chain, or the range --from-seq..--to-seq, to --out (or stdout).

JSONL follows docs/export-format.md, the same lines as GET /v1/audit/export:
every line carries what recomputes its hash, so custos verify --export FILE
(or any JSON parser and SHA-256) checks it with no database.

A whole-chain JSONL export to --out also writes a checkpoint beside it, as
FILE.checkpoint, when the store has one (the store signs one in every
commit): the latest one that witnesses cosigned, as serve keeps it (chain
default's in --cosigned, default DATA.cosigned; any other chain's in
--cosigned's file with .<chain> appended, e.g. DATA.cosigned.acme), when
there is one for the chain and the export reaches its size; else the
chain's latest signed checkpoint. With the verifier key
alone an auditor checks that the file holds the signed tree,
  custos verify --export FILE --checkpoint FILE.checkpoint --vkey KEY
so that a file cut short or rewritten is caught even with recomputed
hashes, and with the witnesses' keys (--witness-vkey W, repeatable) that
witnesses outside the host saw that tree too.`,
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
			if cosigned == "" {
				cosigned = defaultCosigned(dataDir)
			}
			return writeCheckpointBeside(cmd, s, chain, head.Seq, cosignedPath(cosigned, chain), out+".checkpoint", stderr)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant) to export")
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	cmd.Flags().StringVar(&out, "out", "", "file to create (must not exist); default stdout")
	cmd.Flags().Uint64Var(&from, "from-seq", 1, "first seq to export")
	cmd.Flags().Uint64Var(&to, "to-seq", 0, "last seq to export (0: the head)")
	cmd.Flags().StringVar(&cosigned, "cosigned", "", "file in which serve keeps chain default's latest witness-cosigned checkpoint (serve's --cosigned); another chain's is FILE.<chain>; default DATA.cosigned beside the data folder")
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

// writeCheckpointBeside writes to file the checkpoint that a whole-chain
// export of chain ending at seq head carries: the witness-cosigned one kept
// in kept (chain's file: cosignedPath) when it is for chain and its size
// is at most head, so that the export contains it;
// otherwise chain's latest signed checkpoint, which covers at most the
// durable head. A kept note that cannot be read, does not parse or names
// another origin is passed over with a warning on stderr. Whether the
// export extends the cosigned tree is left to verify: a folder that
// contradicts its witnesses gives a pair that does not verify, as it
// should. A store without checkpoints gets none, with a line on stderr.
func writeCheckpointBeside(cmd *cobra.Command, s *eventstore.Store, chain string, head uint64, kept, file string, stderr io.Writer) error {
	note, err := s.SignedCheckpoint(cmd.Context(), chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		fmt.Fprintf(stderr, "custos: the store has no signed checkpoint; %s not written\n", file)
		return nil
	}
	if err != nil {
		return err
	}
	if k := keptCosigned(kept, note, head, stderr); k != nil {
		note = k
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

// keptCosigned returns the cosigned checkpoint kept at path if it is a
// checkpoint of the same origin as signed, the store's own latest signed
// checkpoint of the chain, and of size at most head; else nil. A missing
// file is silent, any other reason to pass it over is a warning.
func keptCosigned(path string, signed []byte, head uint64, stderr io.Writer) []byte {
	kept, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	warn := func(why string) []byte {
		fmt.Fprintf(stderr, "custos: warning: the cosigned checkpoint %s %s; the export carries the latest signed checkpoint instead\n", path, why)
		return nil
	}
	if err != nil {
		return warn(fmt.Sprintf("cannot be read (%v)", err))
	}
	own, err := checkpoint.Parse(checkpoint.Text(signed))
	if err != nil {
		return warn(fmt.Sprintf("cannot be compared: the store's own checkpoint: %v", err))
	}
	cp, err := checkpoint.Parse(checkpoint.Text(kept))
	switch {
	case err != nil:
		return warn(fmt.Sprintf("is not a checkpoint (%v)", err))
	case cp.Origin != own.Origin:
		return warn(fmt.Sprintf("is for origin %q, not %q", cp.Origin, own.Origin))
	case cp.Size > head:
		return warn(fmt.Sprintf("covers %d records, more than the %d exported", cp.Size, head))
	}
	return kept
}
