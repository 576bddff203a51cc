package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi/wire"
)

// Details of GET /readyz when not ready. They never carry the cause (which
// may name folders of the server's machine): the log does.
const (
	detailStoreFailed = "Not ready: the store has failed; the server log has the cause."
	detailNotReady    = "Not ready; the server log has the cause."
)

// healthz handles GET /healthz: the process is alive and serving.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, wire.Status{Status: "ok"})
}

// readyz handles GET /readyz: 200 when Config.Ready reports nil (or is
// nil), 503 otherwise, with a fixed detail; the reason goes to the log. A
// node of a cluster adds its role.
func (s *Server) readyz(c echo.Context) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.cfg.Logger.LogAttrs(c.Request().Context(), slog.LevelError, "not ready",
				slog.String("request_id", requestIDOf(c)), slog.String("err", err.Error()))
			detail := detailNotReady
			if errors.Is(err, eventstore.ErrStoreFailed) {
				detail = detailStoreFailed
			}
			return echo.NewHTTPError(http.StatusServiceUnavailable, detail)
		}
	}
	st := wire.Status{Status: "ready"}
	if s.cfg.Cluster != nil {
		st.Role = s.cfg.Cluster.Role()
	}
	return c.JSON(http.StatusOK, st)
}
