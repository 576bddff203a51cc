package client

import (
	"context"
	"net/http"
	"time"
)

// Decisions an evaluation answers with.
const (
	Allow = "ALLOW"
	Deny  = "DENY"
)

// EvaluateRequest asks whether an agent may retrieve from a source, with
// AutoPIL's field names.
type EvaluateRequest struct {
	AgentRole        string   `json:"agent_role"`
	AgentID          string   `json:"agent_id,omitempty"`
	UserID           string   `json:"user_id,omitempty"`
	SourceID         string   `json:"source_id"`
	SensitivityLevel string   `json:"sensitivity_level,omitempty"`
	SessionID        string   `json:"session_id,omitempty"`
	TaskType         string   `json:"task_type,omitempty"`
	Action           string   `json:"action,omitempty"`
	Query            string   `json:"query,omitempty"`
	PrincipalClaims  []string `json:"principal_claims,omitempty"`
}

// Decision answers Evaluate. Both ALLOW and DENY are successful answers;
// every decision is recorded as event EventID at Seq before it is returned.
type Decision struct {
	Decision      string  `json:"decision"`
	Reason        string  `json:"reason"`
	PolicyName    string  `json:"policy_name"`
	PolicyID      *string `json:"policy_id"`
	PolicyVersion *int    `json:"policy_version"`
	// PolicyResolution is "bound" or "role": which rule chose the policy.
	PolicyResolution *string   `json:"policy_resolution"`
	DenialType       string    `json:"denial_type,omitempty"`
	EventID          string    `json:"event_id"`
	Seq              uint64    `json:"seq"`
	SessionID        string    `json:"session_id"`
	EvaluatedAt      time.Time `json:"evaluated_at"`
}

// Allowed reports whether d is an ALLOW.
func (d Decision) Allowed() bool { return d.Decision == Allow }

// Evaluate asks for a decision (POST /v1/context/evaluate; evaluate).
// ErrUnavailable means the decision could not be recorded and was withheld:
// treat it as a deny.
func (c *Client) Evaluate(ctx context.Context, req EvaluateRequest) (Decision, error) {
	var out Decision
	err := c.do(ctx, http.MethodPost, "/v1/context/evaluate", nil, req, &out)
	return out, err
}
