package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/verify"
)

// verifyChain handles GET /v1/audit/verify: the verify.Report as
// wire.VerifyReport; a broken chain is a 200 with valid false, only a
// failed read is an error.
func (s *Server) verifyChain(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	report, err := s.cfg.Verify(c.Request().Context(), tenantOf(c).ID)
	if err != nil {
		return fmt.Errorf("httpapi: verify chain: %w", err)
	}
	if m := s.cfg.Metrics; m != nil {
		m.ObserveVerify(report.Valid, tenantOf(c).Ledger.Now())
	}
	return c.JSON(http.StatusOK, verifyReport(report))
}

// verifyReport copies r into its wire shape (verify imports the store, so
// the client cannot use verify.Report itself). TestVerifyReportCopiesEveryField
// keeps the two in step.
func verifyReport(r verify.Report) wire.VerifyReport {
	out := wire.VerifyReport{
		Valid: r.Valid, Chain: r.Chain, Total: r.Total, Chained: r.Chained, Legacy: r.Legacy,
		BrokenAt: r.BrokenAt, BrokenAtSeq: r.BrokenAtSeq,
		HeadSeq: r.HeadSeq, HeadHash: r.HeadHash, AnchorPrevHash: r.AnchorPrevHash, AnchorSeq: r.AnchorSeq,
		DurationMS: r.DurationMS,
	}
	if p := r.Detail; p != nil {
		out.Problem = &wire.VerifyProblem{Seq: p.Seq, Kind: p.Kind, Expected: p.Expected, Got: p.Got, Message: p.Message}
	}
	if c := r.Checkpoint; c != nil {
		cp := wire.VerifyCheckpoint(*c)
		out.Checkpoint = &cp
	}
	return out
}
