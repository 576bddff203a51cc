package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/agents"
)

// registerAgentRequest is the body of POST /v1/agents. null means absent.
type registerAgentRequest struct {
	AgentID        string   `json:"agent_id"`
	AgentRole      string   `json:"agent_role"`
	DisplayName    string   `json:"display_name"`
	Description    string   `json:"description"`
	Owner          string   `json:"owner"`
	OwnerTeam      string   `json:"owner_team"`
	Framework      string   `json:"framework"`
	PolicyName     string   `json:"policy_name"`
	PermittedRoles []string `json:"permitted_roles"`
}

func (r registerAgentRequest) command() agents.RegisterCommand {
	return agents.RegisterCommand{
		AgentID: r.AgentID, AgentRole: r.AgentRole, DisplayName: r.DisplayName, Description: r.Description,
		Owner: r.Owner, OwnerTeam: r.OwnerTeam, Framework: r.Framework, PolicyName: r.PolicyName,
		PermittedRoles: r.PermittedRoles,
	}
}

// updateAgentRequest is the body of PUT /v1/agents/:agent_id: a partial
// update; absent (or null) fields keep their values. policy_name "" unbinds.
type updateAgentRequest struct {
	AgentRole      *string   `json:"agent_role"`
	DisplayName    *string   `json:"display_name"`
	Description    *string   `json:"description"`
	Owner          *string   `json:"owner"`
	OwnerTeam      *string   `json:"owner_team"`
	Framework      *string   `json:"framework"`
	PolicyName     *string   `json:"policy_name"`
	PermittedRoles *[]string `json:"permitted_roles"`
}

func (r updateAgentRequest) command() agents.UpdateCommand {
	return agents.UpdateCommand{
		AgentRole: r.AgentRole, DisplayName: r.DisplayName, Description: r.Description, Owner: r.Owner,
		OwnerTeam: r.OwnerTeam, Framework: r.Framework, PolicyName: r.PolicyName, PermittedRoles: r.PermittedRoles,
	}
}

// agentStatusRequest is the body of PATCH /v1/agents/:agent_id/status.
type agentStatusRequest struct {
	Status string `json:"status"`
}

// agentResponse is one agent. Every field is present; unset optional
// strings are null, as AutoPIL's clients expect.
type agentResponse struct {
	AgentID         string    `json:"agent_id"`
	AgentRole       string    `json:"agent_role"`
	DisplayName     *string   `json:"display_name"`
	Description     *string   `json:"description"`
	Owner           *string   `json:"owner"`
	OwnerTeam       *string   `json:"owner_team"`
	Framework       *string   `json:"framework"`
	PolicyName      *string   `json:"policy_name"`
	PermittedRoles  []string  `json:"permitted_roles"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	// Warnings say how the agent's policy binding resolves when that needs
	// saying, for example a policy_name that names no policy yet; always a
	// list, empty when there is nothing to say.
	Warnings []string `json:"warnings"`
}

// withWarnings returns r with warnings (never null).
func (r agentResponse) withWarnings(warnings []string) agentResponse {
	r.Warnings = append([]string{}, warnings...)
	return r
}

func newAgentResponse(a agents.Agent) agentResponse {
	roles := a.PermittedRoles
	if roles == nil {
		roles = []string{}
	}
	return agentResponse{
		AgentID: a.AgentID, AgentRole: a.AgentRole,
		DisplayName: stringOrNil(a.DisplayName), Description: stringOrNil(a.Description),
		Owner: stringOrNil(a.Owner), OwnerTeam: stringOrNil(a.OwnerTeam), Framework: stringOrNil(a.Framework),
		PolicyName: stringOrNil(a.PolicyName), PermittedRoles: roles, Status: string(a.Status),
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(), StatusChangedAt: a.StatusChangedAt.UTC(),
		Warnings: []string{},
	}
}

// agentRetiredError answers 404 for GET of a retired agent: retired agents
// are kept for history but are no longer current.
type agentRetiredError struct {
	id string
	at time.Time
}

func (e *agentRetiredError) Error() string {
	return fmt.Sprintf("Agent '%s' was retired at %s; its history stays readable with ?as_of= before that instant and in GET /v1/audit/events?agent_id=%s.",
		e.id, e.at.UTC().Format(time.RFC3339Nano), e.id)
}

func (s *Server) registerAgent(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req registerAgentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Ledger.RegisterAgent(c.Request().Context(), by, req.command())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, newAgentResponse(a).withWarnings(s.cfg.Ledger.AgentWarnings(a)))
}

func (s *Server) listAgents(c echo.Context) error {
	if err := onlyQueryParams(c, "framework", "owner", "status", "as_of"); err != nil {
		return err
	}
	filter := agents.Filter{Framework: c.QueryParam("framework"), Owner: c.QueryParam("owner"), Status: c.QueryParam("status")}
	if filter.Status != "" {
		if _, err := agents.ParseStatus(filter.Status); err != nil {
			return err // a *ValidationError on status: 422
		}
	}
	// Without ?status= retired agents are left out (they are kept for
	// history, see GET /v1/audit/events); ?status=retired lists them.
	warnings := s.cfg.Ledger.AgentWarnings
	list := s.cfg.Ledger.Agents(filter)
	if past, _, err := s.asOf(c); err != nil {
		return err
	} else if past != nil {
		list, warnings = past.Agents.List(filter), past.AgentWarnings
	}
	out := make([]agentResponse, len(list))
	for i, a := range list {
		out[i] = newAgentResponse(a).withWarnings(warnings(a))
	}
	return c.JSON(http.StatusOK, out) // a bare array, as AutoPIL's clients expect
}

func (s *Server) getAgent(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	past, _, err := s.asOf(c)
	if err != nil {
		return err
	}
	if past != nil {
		// History: the agent as it was, retired or not.
		a, ok := past.Agents.ByID(c.Param("agent_id"))
		if !ok {
			return agents.ErrNotFound
		}
		return c.JSON(http.StatusOK, newAgentResponse(a).withWarnings(past.AgentWarnings(a)))
	}
	a, err := s.cfg.Ledger.Agent(c.Param("agent_id"))
	if err != nil {
		return err
	}
	if a.Status == agents.StatusRetired {
		return &agentRetiredError{id: a.AgentID, at: a.StatusChangedAt}
	}
	return c.JSON(http.StatusOK, newAgentResponse(a).withWarnings(s.cfg.Ledger.AgentWarnings(a)))
}

func (s *Server) updateAgent(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req updateAgentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Ledger.UpdateAgent(c.Request().Context(), by, c.Param("agent_id"), req.command())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newAgentResponse(a).withWarnings(s.cfg.Ledger.AgentWarnings(a)))
}

func (s *Server) changeAgentStatus(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req agentStatusRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Ledger.ChangeAgentStatus(c.Request().Context(), by, c.Param("agent_id"), req.Status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newAgentResponse(a))
}

func (s *Server) retireAgent(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	a, err := s.cfg.Ledger.RetireAgent(c.Request().Context(), by, c.Param("agent_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newAgentResponse(a))
}
