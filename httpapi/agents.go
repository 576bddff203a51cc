package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/httpapi/wire"
)

func registerAgentCommand(r wire.RegisterAgentRequest) agents.RegisterCommand {
	return agents.RegisterCommand{
		AgentID: r.AgentID, AgentRole: r.AgentRole, DisplayName: r.DisplayName, Description: r.Description,
		Owner: r.Owner, OwnerTeam: r.OwnerTeam, Framework: r.Framework, PolicyName: r.PolicyName,
		PolicyID: r.PolicyID, PermittedRoles: r.PermittedRoles,
	}
}

func updateAgentCommand(r wire.UpdateAgentRequest) agents.UpdateCommand {
	return agents.UpdateCommand{
		AgentRole: r.AgentRole, DisplayName: r.DisplayName, Description: r.Description, Owner: r.Owner,
		OwnerTeam: r.OwnerTeam, Framework: r.Framework, PolicyName: r.PolicyName, PolicyID: r.PolicyID,
		PermittedRoles: r.PermittedRoles,
	}
}

// withWarnings returns r with warnings (never null).
func withWarnings(r wire.Agent, warnings []string) wire.Agent {
	r.Warnings = append([]string{}, warnings...)
	return r
}

// newAgentResponse shows a: every field present, unset optional strings
// null, as AutoPIL's clients expect.
func newAgentResponse(a agents.Agent) wire.Agent {
	roles := a.PermittedRoles
	if roles == nil {
		roles = []string{}
	}
	return wire.Agent{
		AgentID: a.AgentID, AgentRole: a.AgentRole,
		DisplayName: stringOrNil(a.DisplayName), Description: stringOrNil(a.Description),
		Owner: stringOrNil(a.Owner), OwnerTeam: stringOrNil(a.OwnerTeam), Framework: stringOrNil(a.Framework),
		PolicyName: stringOrNil(a.PolicyName), PolicyID: stringOrNil(a.PolicyID), PermittedRoles: roles, Status: string(a.Status),
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
	var req wire.RegisterAgentRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := tenantOf(c).Ledger.RegisterAgent(c.Request().Context(), by, registerAgentCommand(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, withWarnings(newAgentResponse(a), tenantOf(c).Ledger.AgentWarnings(a)))
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
	warnings := tenantOf(c).Ledger.AgentWarnings
	list := tenantOf(c).Ledger.Agents(filter)
	if past, _, err := s.asOf(c); err != nil {
		return err
	} else if past != nil {
		list, warnings = past.Agents.List(filter), past.AgentWarnings
	}
	out := make([]wire.Agent, len(list))
	for i, a := range list {
		out[i] = withWarnings(newAgentResponse(a), warnings(a))
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
		return c.JSON(http.StatusOK, withWarnings(newAgentResponse(a), past.AgentWarnings(a)))
	}
	a, err := tenantOf(c).Ledger.Agent(c.Param("agent_id"))
	if err != nil {
		return err
	}
	if a.Status == agents.StatusRetired {
		return &agentRetiredError{id: a.AgentID, at: a.StatusChangedAt}
	}
	return c.JSON(http.StatusOK, withWarnings(newAgentResponse(a), tenantOf(c).Ledger.AgentWarnings(a)))
}

func (s *Server) updateAgent(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req wire.UpdateAgentRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := tenantOf(c).Ledger.UpdateAgent(c.Request().Context(), by, c.Param("agent_id"), updateAgentCommand(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withWarnings(newAgentResponse(a), tenantOf(c).Ledger.AgentWarnings(a)))
}

func (s *Server) changeAgentStatus(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req wire.AgentStatusRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := tenantOf(c).Ledger.ChangeAgentStatus(c.Request().Context(), by, c.Param("agent_id"), req.Status)
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
	a, err := tenantOf(c).Ledger.RetireAgent(c.Request().Context(), by, c.Param("agent_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newAgentResponse(a))
}
