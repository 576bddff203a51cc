package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/httpapi/wire"
)

// backupNamePattern is what a backup name may be: a single folder name of
// safe characters, never a path.
const backupNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var backupName = regexp.MustCompile(backupNamePattern)

// Details of POST /v1/admin/backup.
const (
	detailBackupsDisabled = "Online backups are disabled on this server: start it with --backup-dir DIR " +
		"(a folder outside the data folder) to write them to DIR/NAME, or back up offline with custos backup --data."
	detailBackupName = "Invalid request: name must be a folder name matching " + backupNamePattern +
		" without \"..\" (not a path); the backup is written under the server's backup folder."
	detailBackupOut = "Invalid request: out is no longer accepted; give name, a folder name under the server's " +
		"backup folder (--backup-dir)."
)

// backup handles POST /v1/admin/backup: it writes a consistent copy of the
// store into BackupDir/name while the server keeps serving. 403 when the
// server has no BackupDir or Backup, 422 for a name outside the set (or
// out), 409 when the name exists.
//
// Everything happens inside BackupDir through os.Root, so no symlink or ..
// leads out of it; a name that exists as anything, a symlink included, is
// 409. The copy is written to a hidden sibling and renamed to the name
// once complete, so a name never holds half a backup, and a failed one
// leaves nothing.
func (s *Server) backup(c echo.Context) error {
	if s.cfg.Backup == nil || s.cfg.BackupDir == "" {
		return echo.NewHTTPError(http.StatusForbidden, detailBackupsDisabled)
	}
	var req wire.BackupRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Out != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, detailBackupOut)
	}
	if !backupName.MatchString(req.Name) || strings.Contains(req.Name, "..") {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, detailBackupName)
	}
	root, err := os.OpenRoot(s.cfg.BackupDir)
	if err != nil {
		return fmt.Errorf("httpapi: open the backup folder: %w", err)
	}
	defer root.Close()
	exists := func() error {
		return echo.NewHTTPError(http.StatusConflict,
			fmt.Sprintf("Backup %s already exists; choose a new name.", req.Name))
	}
	if _, err := root.Lstat(req.Name); err == nil {
		return exists()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("httpapi: look up backup %s: %w", req.Name, err)
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	// A valid name starts with a letter or digit: the partial copy's name
	// can be no backup's.
	partial := "." + req.Name + ".partial-" + hex.EncodeToString(suffix[:])
	start := time.Now()
	if err := s.cfg.Backup(c.Request().Context(), filepath.Join(root.Name(), partial)); err != nil {
		_ = root.RemoveAll(partial)
		return fmt.Errorf("httpapi: backup %s: %w", req.Name, err)
	}
	// Root.Rename refuses an existing folder, and a folder cannot replace
	// a file or symlink: whatever took the name meanwhile stays.
	if err := root.Rename(partial, req.Name); err != nil {
		_ = root.RemoveAll(partial)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.ENOTDIR) {
			return exists()
		}
		return fmt.Errorf("httpapi: backup %s: %w", req.Name, err)
	}
	return c.JSON(http.StatusCreated, wire.BackupResult{
		Name:       req.Name,
		Out:        filepath.Join(root.Name(), req.Name),
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	})
}
