package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/custos-dev/custos/httpapi/wire"
)

// Agent statuses. An agent starts as draft; only approved agents may be
// evaluated; retired is final.
const (
	AgentDraft     = "draft"
	AgentApproved  = "approved"
	AgentSuspended = "suspended"
	AgentRetired   = "retired"
)

// AgentFilter narrows ListAgents; empty fields do not filter.
type AgentFilter struct {
	Framework string
	Owner     string
	Status    string
}

func (f AgentFilter) query() url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"framework": f.Framework, "owner": f.Owner, "status": f.Status} {
		if v != "" {
			q.Set(name, v)
		}
	}
	return q
}

// RegisterAgent registers an agent as draft (POST /v1/agents; admin).
// AgentRole is required; an empty AgentID lets the server mint one.
func (c *Client) RegisterAgent(ctx context.Context, req wire.RegisterAgentRequest) (wire.Agent, error) {
	var out wire.Agent
	err := c.do(ctx, http.MethodPost, "/v1/agents", nil, req, &out)
	return out, err
}

// ListAgents returns the agents that match f (GET /v1/agents; read).
func (c *Client) ListAgents(ctx context.Context, f AgentFilter) ([]wire.Agent, error) {
	var out []wire.Agent
	err := c.do(ctx, http.MethodGet, "/v1/agents", f.query(), nil, &out)
	return out, err
}

// GetAgent returns one agent (GET /v1/agents/{id}; read).
func (c *Client) GetAgent(ctx context.Context, agentID string) (wire.Agent, error) {
	var out wire.Agent
	err := c.do(ctx, http.MethodGet, "/v1/agents/"+seg(agentID), nil, nil, &out)
	return out, err
}

// UpdateAgent changes the fields req sets (PUT /v1/agents/{id}; admin):
// nil fields keep their values, PolicyName "" unbinds the agent.
func (c *Client) UpdateAgent(ctx context.Context, agentID string, req wire.UpdateAgentRequest) (wire.Agent, error) {
	var out wire.Agent
	err := c.do(ctx, http.MethodPut, "/v1/agents/"+seg(agentID), nil, req, &out)
	return out, err
}

// SetAgentStatus moves an agent to status (PATCH /v1/agents/{id}/status;
// admin): ErrConflict for a transition the lifecycle does not allow.
func (c *Client) SetAgentStatus(ctx context.Context, agentID, status string) (wire.Agent, error) {
	var out wire.Agent
	err := c.do(ctx, http.MethodPatch, "/v1/agents/"+seg(agentID)+"/status", nil, wire.AgentStatusRequest{Status: status}, &out)
	return out, err
}

// RetireAgent retires an agent for good (DELETE /v1/agents/{id}; admin).
func (c *Client) RetireAgent(ctx context.Context, agentID string) (wire.Agent, error) {
	var out wire.Agent
	err := c.do(ctx, http.MethodDelete, "/v1/agents/"+seg(agentID), nil, nil, &out)
	return out, err
}
