package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// errStoreLocked means the data folder is open in another process.
var errStoreLocked = errors.New("the store is in use by another process (a running custos serve?)")

func newBackupCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var out, dataDir string
	cmd := &cobra.Command{
		Use:   "backup --out DIR",
		Short: "Write a consistent copy of a store, from a running server or offline",
		Long: `backup writes a consistent copy of the store into --out, a folder that must
not exist yet. The copy is a data folder like any other: verify it with
custos verify --data DIR, serve it with custos serve --data DIR.

Online (default): asks the server at --server (or CUSTOS_SERVER) with an admin
key in CUSTOS_API_KEY to write the copy while it keeps serving. --out is a
path on the server's machine; a relative one is made absolute against the
current folder.

Offline: with --data DIR (or CUSTOS_DATA), opens the store itself; the server
must be stopped (a running server holds the store's lock: use online mode).

Exit codes: 0 the copy is written, 2 it is not (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withCode(2, errors.New("--out is required"))
			}
			if dataDir != "" {
				return backupOffline(dataDir, out, stdout, newLogger(stderr, slog.LevelWarn))
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return withCode(2, fmt.Errorf("--out %s: %w", out, err))
			}
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			res, err := s.client.Backup(s.ctx, abs)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				return s.printJSON(res)
			}
			fmt.Fprintf(stdout, "backup written to %s by %s in %.0f ms\n", res.Out, s.client.BaseURL(), res.DurationMS)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the copy to; must not exist (required)")
	cmd.Flags().StringVar(&dataDir, "data", "", "back up this data folder offline instead of asking a server")
	_ = cmd.MarkFlagDirname("out")
	_ = cmd.MarkFlagDirname("data")
	addClientFlags(cmd, &f)
	f.timeout = 10 * time.Minute
	cmd.Flags().Lookup("timeout").DefValue = f.timeout.String()
	return cmd
}

// backupOffline checkpoints the store in dataDir into out.
func backupOffline(dataDir, out string, stdout io.Writer, logger *slog.Logger) error {
	if _, err := os.Lstat(out); err == nil {
		return withCode(2, fmt.Errorf("--out %s already exists; name a new folder", out))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return withCode(2, fmt.Errorf("--out %s: %w", out, err))
	}
	start := time.Now()
	s, err := openStore(dataDir, false, logger)
	if err != nil {
		if isLockError(err) {
			return withCode(2, fmt.Errorf("%w: %s is locked.\nBack it up online instead, while the server runs:\n  CUSTOS_API_KEY=<admin key> custos backup --server http://HOST:PORT --out /absolute/path\n(cause: %v)",
				errStoreLocked, dataDir, err))
		}
		return withCode(2, err)
	}
	defer s.Close()
	if err := s.Checkpoint(out); err != nil {
		return withCode(2, err)
	}
	if err := s.Close(); err != nil {
		return withCode(2, fmt.Errorf("close store: %w", err))
	}
	fmt.Fprintf(stdout, "backup of %s written to %s in %.0f ms\n", dataDir, out, float64(time.Since(start).Microseconds())/1000)
	return nil
}

// isLockError reports whether err is Pebble failing to take the data
// folder's lock: fcntl F_SETLK answers EAGAIN when another process holds
// it; Pebble says "lock held by current process" within one process.
func isLockError(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held")
}
