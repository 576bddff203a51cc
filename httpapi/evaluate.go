package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
)

// detailDecisionWithheld answers an evaluation whose decision could not be
// recorded: no decision leaves without its audit record.
const detailDecisionWithheld = "audit log unavailable; decision withheld"

// evaluateRequest is the body of POST /v1/context/evaluate, field names as
// AutoPIL's clients send them. null means absent.
type evaluateRequest struct {
	AgentRole        string   `json:"agent_role"`
	AgentID          string   `json:"agent_id"`
	UserID           string   `json:"user_id"`
	SourceID         string   `json:"source_id"`
	SensitivityLevel string   `json:"sensitivity_level"`
	SessionID        string   `json:"session_id"`
	TaskType         string   `json:"task_type"`
	Action           string   `json:"action"`
	Query            string   `json:"query"`
	PrincipalClaims  []string `json:"principal_claims"`
}

func (r evaluateRequest) request() policy.Request {
	return policy.Request{
		AgentRole: r.AgentRole, AgentID: r.AgentID, UserID: r.UserID, SourceID: r.SourceID,
		Sensitivity: policy.Level(r.SensitivityLevel), SessionID: r.SessionID, TaskType: r.TaskType,
		Action: policy.Action(r.Action), Query: r.Query, PrincipalClaims: r.PrincipalClaims,
	}
}

// evaluateResponse answers both outcomes with 200.
type evaluateResponse struct {
	Decision      string  `json:"decision"`
	Reason        string  `json:"reason"`
	PolicyName    string  `json:"policy_name"`
	PolicyID      *string `json:"policy_id"`
	PolicyVersion *int    `json:"policy_version"`
	// PolicyResolution says which rule chose the deciding policy: "bound"
	// (the agent's policy binding) or "role" (the role's only policy); null
	// when no policy decided.
	PolicyResolution *string   `json:"policy_resolution"`
	DenialType       string    `json:"denial_type,omitempty"`
	EventID          string    `json:"event_id"`
	Seq              uint64    `json:"seq"`
	SessionID        string    `json:"session_id"`
	EvaluatedAt      time.Time `json:"evaluated_at"`
}

func (s *Server) evaluate(c echo.Context) error {
	start := time.Now()
	caller, ok := authenticated(c)
	if !ok {
		return errNoCaller
	}
	var body evaluateRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	req := body.request()
	if err := decision.ValidateRequest(req); err != nil {
		return err
	}
	made, rec, err := s.cfg.Ledger.Evaluate(c.Request().Context(), caller, req)
	if err != nil {
		if errors.Is(err, eventstore.ErrStoreFailed) || errors.Is(err, eventstore.ErrClosed) {
			return echo.NewHTTPError(http.StatusServiceUnavailable, detailDecisionWithheld)
		}
		return err
	}
	if m := s.cfg.Metrics; m != nil {
		m.ObserveDecision(made.Decision, made.DenialType, time.Since(start))
	}
	resp := evaluateResponse{
		Decision:    made.Decision,
		Reason:      made.Reason,
		PolicyName:  made.PolicyName,
		DenialType:  made.DenialType,
		EventID:     rec.ID,
		Seq:         rec.Seq,
		SessionID:   made.Request.SessionID,
		EvaluatedAt: made.EvaluatedAt,
	}
	if made.PolicyID != "" {
		resp.PolicyID, resp.PolicyVersion = &made.PolicyID, &made.PolicyVersion
	}
	if made.PolicyResolution != "" {
		resp.PolicyResolution = &made.PolicyResolution
	}
	return c.JSON(http.StatusOK, resp)
}
