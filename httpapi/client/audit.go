package client

import (
	"context"
	"net/http"
	"time"
)

// VerifyReport is the server's check of its live chain. A broken chain is a
// successful answer with Valid false.
type VerifyReport struct {
	Valid   bool   `json:"valid"`
	Total   uint64 `json:"total"`
	Chained uint64 `json:"chained"`
	Legacy  uint64 `json:"legacy"`
	// BrokenAt is the id of the first broken record, or nil.
	BrokenAt *string `json:"broken_at"`
	// Problem describes the first failed check, or is nil.
	Problem        *VerifyProblem `json:"detail,omitempty"`
	HeadSeq        uint64         `json:"head_seq"`
	HeadHash       string         `json:"head_hash"`
	AnchorPrevHash string         `json:"anchor_prev_hash"`
	AnchorSeq      uint64         `json:"anchor_seq"`
	DurationMS     float64        `json:"duration_ms"`
}

// VerifyProblem is the first failed check of a chain.
type VerifyProblem struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	Message  string `json:"message"`
}

// TrailEvent is one decision of a session trail.
type TrailEvent struct {
	EventID          string    `json:"event_id"`
	Seq              uint64    `json:"seq"`
	Time             time.Time `json:"time"`
	Decision         string    `json:"decision"`
	Reason           string    `json:"reason"`
	PolicyName       string    `json:"policy_name"`
	PolicyID         string    `json:"policy_id,omitempty"`
	PolicyVersion    int       `json:"policy_version,omitempty"`
	DenialType       string    `json:"denial_type,omitempty"`
	AgentID          string    `json:"agent_id"`
	AgentRole        string    `json:"agent_role"`
	UserID           string    `json:"user_id"`
	SourceID         string    `json:"source_id"`
	SensitivityLevel string    `json:"sensitivity_level"`
	TaskType         string    `json:"task_type,omitempty"`
	Action           string    `json:"action"`
	KeyID            string    `json:"key_id"`
}

// SessionTrail is every decision of one session, in order.
type SessionTrail struct {
	SessionID       string       `json:"session_id"`
	OwnerRole       string       `json:"owner_role"`
	OwnerAgentID    string       `json:"owner_agent_id"`
	StartedAt       time.Time    `json:"started_at"`
	ExpiresAt       *time.Time   `json:"expires_at"`
	TotalEvents     int          `json:"total_events"`
	Allowed         int          `json:"allowed"`
	Denied          int          `json:"denied"`
	SourcesAccessed []string     `json:"sources_accessed"`
	FirstEvent      time.Time    `json:"first_event"`
	LastEvent       time.Time    `json:"last_event"`
	Events          []TrailEvent `json:"events"`
}

// VerifyChain replays the server's live chain from genesis (GET
// /v1/audit/verify; read).
func (c *Client) VerifyChain(ctx context.Context) (VerifyReport, error) {
	var out VerifyReport
	err := c.do(ctx, http.MethodGet, "/v1/audit/verify", nil, nil, &out)
	return out, err
}

// SessionTrail returns every decision of a session (GET
// /v1/audit/sessions/{id}; read): ErrNotFound for a session without events.
func (c *Client) SessionTrail(ctx context.Context, sessionID string) (SessionTrail, error) {
	var out SessionTrail
	err := c.do(ctx, http.MethodGet, "/v1/audit/sessions/"+seg(sessionID), nil, nil, &out)
	return out, err
}
