package httpapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
)

// backupRequest is the body of POST /v1/admin/backup.
type backupRequest struct {
	// Out is the folder the checkpoint is written to, on the server's
	// machine: absolute, and not existing yet.
	Out string `json:"out"`
}

// backupResponse answers a finished backup.
type backupResponse struct {
	Out        string  `json:"out"`
	DurationMS float64 `json:"duration_ms"`
}

// backup handles POST /v1/admin/backup: it writes a consistent copy of the
// store into the folder out while the server keeps serving. 422 when out is
// missing or not absolute, 409 when it exists, 404 when the server has no
// Config.Backup.
func (s *Server) backup(c echo.Context) error {
	if s.cfg.Backup == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Backups are not enabled on this server.")
	}
	var req backupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Out == "" || !filepath.IsAbs(req.Out) {
		return echo.NewHTTPError(http.StatusUnprocessableEntity,
			"Invalid request: out must be an absolute path on the server's machine.")
	}
	out := filepath.Clean(req.Out)
	start := time.Now()
	if err := s.cfg.Backup(c.Request().Context(), out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return echo.NewHTTPError(http.StatusConflict,
				fmt.Sprintf("Backup folder %s already exists; name a new one.", out))
		}
		return fmt.Errorf("httpapi: backup to %s: %w", out, err)
	}
	return c.JSON(http.StatusCreated, backupResponse{
		Out:        out,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	})
}
