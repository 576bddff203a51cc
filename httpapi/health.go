package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// statusResponse answers the probes.
type statusResponse struct {
	Status string `json:"status"`
}

// healthz handles GET /healthz: the process is alive and serving.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusResponse{Status: "ok"})
}

// readyz handles GET /readyz: 200 when Config.Ready reports nil (or is
// nil), 503 with its reason otherwise.
func (s *Server) readyz(c echo.Context) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "Not ready: "+err.Error())
		}
	}
	return c.JSON(http.StatusOK, statusResponse{Status: "ready"})
}
