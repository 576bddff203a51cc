package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Agent statuses. An agent starts as draft; only approved agents may be
// evaluated; retired is final.
const (
	AgentDraft     = "draft"
	AgentApproved  = "approved"
	AgentSuspended = "suspended"
	AgentRetired   = "retired"
)

// Agent is a registered agent. Optional fields the server reports as null
// are "" here.
type Agent struct {
	AgentID         string    `json:"agent_id"`
	AgentRole       string    `json:"agent_role"`
	DisplayName     string    `json:"display_name"`
	Description     string    `json:"description"`
	Owner           string    `json:"owner"`
	OwnerTeam       string    `json:"owner_team"`
	Framework       string    `json:"framework"`
	PolicyName      string    `json:"policy_name"`
	PermittedRoles  []string  `json:"permitted_roles"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	// Warnings say how the agent's policy binding resolves when that needs
	// saying (a policy_name that names no policy yet, for example).
	Warnings []string `json:"warnings"`
}

// RegisterAgentRequest is the body of RegisterAgent. AgentRole is required;
// an empty AgentID lets the server mint one.
type RegisterAgentRequest struct {
	AgentID        string   `json:"agent_id,omitempty"`
	AgentRole      string   `json:"agent_role"`
	DisplayName    string   `json:"display_name,omitempty"`
	Description    string   `json:"description,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	OwnerTeam      string   `json:"owner_team,omitempty"`
	Framework      string   `json:"framework,omitempty"`
	PolicyName     string   `json:"policy_name,omitempty"`
	PermittedRoles []string `json:"permitted_roles,omitempty"`
}

// UpdateAgentRequest is a partial update: nil fields keep their values.
// PolicyName "" unbinds the agent from its policy.
type UpdateAgentRequest struct {
	AgentRole      *string   `json:"agent_role,omitempty"`
	DisplayName    *string   `json:"display_name,omitempty"`
	Description    *string   `json:"description,omitempty"`
	Owner          *string   `json:"owner,omitempty"`
	OwnerTeam      *string   `json:"owner_team,omitempty"`
	Framework      *string   `json:"framework,omitempty"`
	PolicyName     *string   `json:"policy_name,omitempty"`
	PermittedRoles *[]string `json:"permitted_roles,omitempty"`
}

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
func (c *Client) RegisterAgent(ctx context.Context, req RegisterAgentRequest) (Agent, error) {
	var out Agent
	err := c.do(ctx, http.MethodPost, "/v1/agents", nil, req, &out)
	return out, err
}

// ListAgents returns the agents that match f (GET /v1/agents; read).
func (c *Client) ListAgents(ctx context.Context, f AgentFilter) ([]Agent, error) {
	var out []Agent
	err := c.do(ctx, http.MethodGet, "/v1/agents", f.query(), nil, &out)
	return out, err
}

// GetAgent returns one agent (GET /v1/agents/{id}; read).
func (c *Client) GetAgent(ctx context.Context, agentID string) (Agent, error) {
	var out Agent
	err := c.do(ctx, http.MethodGet, "/v1/agents/"+seg(agentID), nil, nil, &out)
	return out, err
}

// UpdateAgent changes the fields req sets (PUT /v1/agents/{id}; admin).
func (c *Client) UpdateAgent(ctx context.Context, agentID string, req UpdateAgentRequest) (Agent, error) {
	var out Agent
	err := c.do(ctx, http.MethodPut, "/v1/agents/"+seg(agentID), nil, req, &out)
	return out, err
}

// SetAgentStatus moves an agent to status (PATCH /v1/agents/{id}/status;
// admin): ErrConflict for a transition the lifecycle does not allow.
func (c *Client) SetAgentStatus(ctx context.Context, agentID, status string) (Agent, error) {
	var out Agent
	body := struct {
		Status string `json:"status"`
	}{status}
	err := c.do(ctx, http.MethodPatch, "/v1/agents/"+seg(agentID)+"/status", nil, body, &out)
	return out, err
}

// RetireAgent retires an agent for good (DELETE /v1/agents/{id}; admin).
func (c *Client) RetireAgent(ctx context.Context, agentID string) (Agent, error) {
	var out Agent
	err := c.do(ctx, http.MethodDelete, "/v1/agents/"+seg(agentID), nil, nil, &out)
	return out, err
}
