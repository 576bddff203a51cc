package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// verifyChain handles GET /v1/audit/verify. The verify.Report JSON is the
// documented contract of this route, so it is sent as is; a broken chain is
// a 200 with valid false, only a failed read is an error.
func (s *Server) verifyChain(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	report, err := s.cfg.Verify(c.Request().Context())
	if err != nil {
		return fmt.Errorf("httpapi: verify chain: %w", err)
	}
	if m := s.cfg.Metrics; m != nil {
		m.ObserveVerify(report.Valid, s.cfg.Ledger.Now())
	}
	return c.JSON(http.StatusOK, report)
}
