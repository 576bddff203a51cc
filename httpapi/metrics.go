package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// serveMetrics handles GET /metrics: the Prometheus exposition of
// Config.Metrics, or 404 when the server has none. Public like the probes,
// so scrapers need no key; it shows counts only, never a key, id or hash.
func (s *Server) serveMetrics(c echo.Context) error {
	if s.cfg.Metrics == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Not found.")
	}
	s.cfg.Metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}
