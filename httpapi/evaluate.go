package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi/wire"
)

// detailDecisionWithheld answers an evaluation whose decision could not be
// recorded: no decision leaves without its audit record.
const detailDecisionWithheld = "audit log unavailable; decision withheld"

// policyRequest is the domain's view of an evaluate body.
func policyRequest(r wire.EvaluateRequest) policy.Request {
	return policy.Request{
		AgentRole: r.AgentRole, AgentID: r.AgentID, UserID: r.UserID, SourceID: r.SourceID,
		Sensitivity: policy.Level(r.SensitivityLevel), SessionID: r.SessionID, TaskType: r.TaskType,
		Action: policy.Action(r.Action), Query: r.Query, PrincipalClaims: r.PrincipalClaims,
	}
}

func (s *Server) evaluate(c echo.Context) error {
	start := time.Now()
	caller, ok := authenticated(c)
	if !ok {
		return errNoCaller
	}
	var body wire.EvaluateRequest
	if err := s.decodeJSON(c, &body); err != nil {
		return err
	}
	req := policyRequest(body)
	if err := decision.ValidateRequest(req); err != nil {
		return err
	}
	wantReceipt := false
	if v, ok := c.Request().Header[wire.ReceiptHeader]; ok {
		if len(v) != 1 || v[0] != "true" {
			return echo.NewHTTPError(http.StatusBadRequest, "Header "+wire.ReceiptHeader+" must be \"true\" when given.")
		}
		wantReceipt = true
	}
	made, rec, err := tenantOf(c).Ledger.Evaluate(c.Request().Context(), caller, req)
	if err != nil {
		if errors.Is(err, eventstore.ErrStoreFailed) || errors.Is(err, eventstore.ErrClosed) {
			return echo.NewHTTPError(http.StatusServiceUnavailable, detailDecisionWithheld)
		}
		return err
	}
	if m := s.cfg.Metrics; m != nil {
		m.ObserveDecision(made.Decision, made.DenialType, time.Since(start))
	}
	traceDecision(c, made)
	resp := wire.Decision{
		Decision:    made.Decision,
		Reason:      made.Reason,
		PolicyName:  made.PolicyName,
		DenialType:  made.DenialType,
		EventID:     rec.ID,
		Seq:         rec.Seq,
		LeafIndex:   rec.Seq - 1,
		SessionID:   made.Request.SessionID,
		EvaluatedAt: made.EvaluatedAt,
	}
	if made.PolicyID != "" {
		resp.PolicyID, resp.PolicyVersion = &made.PolicyID, &made.PolicyVersion
	}
	if made.PolicyResolution != "" {
		resp.PolicyResolution = &made.PolicyResolution
	}
	if wantReceipt && s.cfg.Evidence != nil {
		// The decision stands whatever happens here: a receipt that
		// cannot be built is left out, and the route serves it later.
		if text, err := s.receiptOf(c.Request().Context(), s.cfg.Evidence, tenantOf(c).ID, rec); err == nil {
			resp.Receipt = string(text)
		} else if !errors.Is(err, errNotCoveredYet) {
			s.cfg.Logger.Warn("evaluate: build the receipt asked for", "event_id", rec.ID, "err", err)
		}
	}
	return c.JSON(http.StatusOK, resp)
}
