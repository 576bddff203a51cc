package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/httpapi/wire"
)

// errSessionNotFound answers 404 for a session without events.
var errSessionNotFound = errors.New("httpapi: session has no events")

func (s *Server) sessionTrail(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	trail, ok, err := tenantOf(c).Index.SessionTrail(c.Request().Context(), c.Param("session_id"))
	if err != nil {
		return err
	}
	if !ok {
		return errSessionNotFound
	}
	sess, entries := trail.Session, trail.Entries
	resp := wire.SessionTrail{
		SessionID:   sess.SessionID,
		TotalEvents: len(entries), Allowed: sess.Allowed, Denied: sess.Denied,
		SourcesAccessed: append([]string{}, sess.SourcesAccessed...),
		FirstEvent:      sess.FirstEventAt, LastEvent: sess.LastEventAt,
		Events: make([]wire.TrailEvent, len(entries)),
	}
	if trail.Started {
		resp.OwnerRole, resp.OwnerAgentID = &sess.OwnerRole, &sess.OwnerAgentID
		resp.StartedAt, resp.ExpiresAt = &sess.StartedAt, sess.ExpiresAt
	}
	for i, e := range entries {
		m := e.Made
		resp.Events[i] = wire.TrailEvent{
			EventID: e.ID, Seq: e.Seq, Time: e.Time, Decision: m.Decision, Reason: m.Reason,
			PolicyName: m.PolicyName, PolicyID: m.PolicyID, PolicyVersion: m.PolicyVersion, PolicyResolution: m.PolicyResolution, DenialType: m.DenialType,
			AgentID: m.Request.AgentID, AgentRole: m.Request.AgentRole, UserID: m.Request.UserID,
			SourceID: m.Request.SourceID, SensitivityLevel: string(m.Request.Sensitivity), TaskType: m.Request.TaskType,
			Action: string(m.Request.Action), KeyID: m.KeyID,
		}
	}
	return c.JSON(http.StatusOK, resp)
}
