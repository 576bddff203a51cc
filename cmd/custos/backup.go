package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// errStoreLocked means the data folder is open in another process.
var errStoreLocked = errors.New("the store is in use by another process (a running custos serve?)")

func newBackupCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var name, out, dataDir string
	cmd := &cobra.Command{
		Use:   "backup (--name NAME | --data DIR --out DIR)",
		Short: "Write a consistent copy of a store, from a running server or offline",
		Long: `backup writes a consistent copy of the store into a new folder. The copy is a
data folder like any other: verify it with custos verify --data DIR, serve it
with custos serve --data DIR.

Online (default): asks the server at --server (or CUSTOS_SERVER) with an admin
key in CUSTOS_API_KEY to write the copy while it keeps serving. --name is a
folder name, not a path (a letter or digit, then up to 63 letters, digits,
".", "_" or "-"): the server writes DIR/NAME under the folder its operator
gave it with serve --backup-dir DIR, and refuses online backups without one.

Offline: with --data DIR (or CUSTOS_DATA), opens the store itself and writes
the copy to --out, a path that must not exist yet; the server must be stopped
(a running server holds the store's lock: use online mode).

Exit codes: 0 the copy is written, 2 it is not (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir != "" {
				if name != "" {
					return withCode(2, errors.New("--name is for online backups; offline (with --data) give --out DIR"))
				}
				if out == "" {
					return withCode(2, errors.New("--out is required with --data"))
				}
				return backupOffline(dataDir, out, stdout, newLogger(stderr, slog.LevelWarn))
			}
			if out != "" {
				return withCode(2, errors.New("--out is for offline backups (with --data); online, give --name NAME: the server writes it under its --backup-dir"))
			}
			if name == "" {
				return withCode(2, errors.New("--name is required (or --data DIR --out DIR offline)"))
			}
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			res, err := s.client.Backup(s.ctx, name)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				return s.printJSON(res)
			}
			fmt.Fprintf(stdout, "backup %s written to %s by %s in %.0f ms\n", res.Name, res.Out, s.client.BaseURL(), res.DurationMS)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "online: name of the backup under the server's --backup-dir; must not exist")
	cmd.Flags().StringVar(&out, "out", "", "offline (with --data): folder to write the copy to; must not exist")
	cmd.Flags().StringVar(&dataDir, "data", "", "back up this data folder offline instead of asking a server")
	_ = cmd.MarkFlagDirname("out")
	_ = cmd.MarkFlagDirname("data")
	addClientFlags(cmd, &f)
	f.timeout = 10 * time.Minute
	cmd.Flags().Lookup("timeout").DefValue = f.timeout.String()
	return cmd
}

// backupRoot prepares serve's --backup-dir before anything is created: it
// refuses a folder inside the data folder (a backup there would be copied
// into the next backup, and lost with the disk it is meant to survive),
// symlinks resolved, then creates it (0700) when missing and returns it
// absolute with symlinks resolved.
func backupRoot(dir, dataDir string) (string, error) {
	inside := func(root, data string) bool {
		rel, err := filepath.Rel(data, root)
		return err == nil && (rel == "." || rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
	}
	data, err := resolveExisting(dataDir)
	if err != nil {
		return "", fmt.Errorf("--data %s: %w", dataDir, err)
	}
	root, err := resolveExisting(dir)
	if err != nil {
		return "", fmt.Errorf("--backup-dir %s: %w", dir, err)
	}
	refuse := fmt.Errorf("--backup-dir %s is inside the data folder %s: give a folder outside it, ideally on another disk", dir, dataDir)
	if inside(root, data) {
		return "", refuse
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("--backup-dir %s: %w", dir, err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return "", fmt.Errorf("--backup-dir %s: %w", dir, err)
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return "", fmt.Errorf("--backup-dir %s is not a folder", dir)
	}
	if inside(root, data) {
		return "", refuse
	}
	return root, nil
}

// resolveExisting returns p absolute, with the symlinks of its longest
// existing prefix resolved.
func resolveExisting(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := abs; ; cur = filepath.Dir(cur) {
		if resolved, err := filepath.EvalSymlinks(cur); err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{resolved}, rest...)...), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if filepath.Dir(cur) == cur {
			return abs, nil
		}
		rest = append(rest, filepath.Base(cur))
	}
}

// backupOffline checkpoints the store in dataDir into out.
func backupOffline(dataDir, out string, stdout io.Writer, logger *slog.Logger) error {
	if _, err := os.Lstat(out); err == nil {
		return withCode(2, fmt.Errorf("--out %s already exists; name a new folder", out))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return withCode(2, fmt.Errorf("--out %s: %w", out, err))
	}
	start := time.Now()
	s, err := openStore(dataDir, false, signing{}, logger)
	if err != nil {
		if isLockError(err) {
			return withCode(2, fmt.Errorf("%w: %s is locked.\nBack it up online instead, while the server runs:\n  CUSTOS_API_KEY=<admin key> custos backup --server http://HOST:PORT --name NAME\n(cause: %v)",
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
