package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// errSessionNotFound answers 404 for a session without events.
var errSessionNotFound = errors.New("httpapi: session has no events")

// trailEvent is one decision of a session trail, flat, as AutoPIL's audit
// reader expects (decision, source_id, policy_name, reason).
type trailEvent struct {
	EventID          string    `json:"event_id"`
	Seq              uint64    `json:"seq"`
	Time             time.Time `json:"time"`
	Decision         string    `json:"decision"`
	Reason           string    `json:"reason"`
	PolicyName       string    `json:"policy_name"`
	PolicyID         string    `json:"policy_id,omitempty"`
	PolicyVersion    int       `json:"policy_version,omitempty"`
	PolicyResolution string    `json:"policy_resolution,omitempty"`
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

// sessionTrailResponse is a session's trail: every decision that named it.
// The ownership fields are null when no decision started the session (every
// decision that named it came before the session step).
type sessionTrailResponse struct {
	SessionID       string       `json:"session_id"`
	OwnerRole       *string      `json:"owner_role"`
	OwnerAgentID    *string      `json:"owner_agent_id"`
	StartedAt       *time.Time   `json:"started_at"`
	ExpiresAt       *time.Time   `json:"expires_at"`
	TotalEvents     int          `json:"total_events"`
	Allowed         int          `json:"allowed"`
	Denied          int          `json:"denied"`
	SourcesAccessed []string     `json:"sources_accessed"`
	FirstEvent      time.Time    `json:"first_event"`
	LastEvent       time.Time    `json:"last_event"`
	Events          []trailEvent `json:"events"`
}

func (s *Server) sessionTrail(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	trail, ok, err := s.cfg.Index.SessionTrail(c.Request().Context(), c.Param("session_id"))
	if err != nil {
		return err
	}
	if !ok {
		return errSessionNotFound
	}
	sess, entries := trail.Session, trail.Entries
	resp := sessionTrailResponse{
		SessionID:   sess.SessionID,
		TotalEvents: len(entries), Allowed: sess.Allowed, Denied: sess.Denied,
		SourcesAccessed: append([]string{}, sess.SourcesAccessed...),
		FirstEvent:      sess.FirstEventAt, LastEvent: sess.LastEventAt,
		Events: make([]trailEvent, len(entries)),
	}
	if trail.Started {
		resp.OwnerRole, resp.OwnerAgentID = &sess.OwnerRole, &sess.OwnerAgentID
		resp.StartedAt, resp.ExpiresAt = &sess.StartedAt, sess.ExpiresAt
	}
	for i, e := range entries {
		m := e.Made
		resp.Events[i] = trailEvent{
			EventID: e.ID, Seq: e.Seq, Time: e.Time, Decision: m.Decision, Reason: m.Reason,
			PolicyName: m.PolicyName, PolicyID: m.PolicyID, PolicyVersion: m.PolicyVersion, PolicyResolution: m.PolicyResolution, DenialType: m.DenialType,
			AgentID: m.Request.AgentID, AgentRole: m.Request.AgentRole, UserID: m.Request.UserID,
			SourceID: m.Request.SourceID, SensitivityLevel: string(m.Request.Sensitivity), TaskType: m.Request.TaskType,
			Action: string(m.Request.Action), KeyID: m.KeyID,
		}
	}
	return c.JSON(http.StatusOK, resp)
}
