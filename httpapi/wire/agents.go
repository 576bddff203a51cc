package wire

import "time"

// RegisterAgentRequest is the body of POST /v1/agents. agent_role is
// required; an absent agent_id lets the server mint one.
type RegisterAgentRequest struct {
	AgentID        string   `json:"agent_id,omitempty"`
	AgentRole      string   `json:"agent_role"`
	DisplayName    string   `json:"display_name,omitempty"`
	Description    string   `json:"description,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	OwnerTeam      string   `json:"owner_team,omitempty"`
	Framework      string   `json:"framework,omitempty"`
	PolicyName     string   `json:"policy_name,omitempty"`
	PolicyID       string   `json:"policy_id,omitempty"`
	PermittedRoles []string `json:"permitted_roles,omitempty"`
}

// UpdateAgentRequest is the body of PUT /v1/agents/{agent_id}: a partial
// update; absent (or null) fields keep their values. policy_name "" or
// policy_id "" removes that binding.
type UpdateAgentRequest struct {
	AgentRole      *string   `json:"agent_role,omitempty"`
	DisplayName    *string   `json:"display_name,omitempty"`
	Description    *string   `json:"description,omitempty"`
	Owner          *string   `json:"owner,omitempty"`
	OwnerTeam      *string   `json:"owner_team,omitempty"`
	Framework      *string   `json:"framework,omitempty"`
	PolicyName     *string   `json:"policy_name,omitempty"`
	PolicyID       *string   `json:"policy_id,omitempty"`
	PermittedRoles *[]string `json:"permitted_roles,omitempty"`
}

// AgentStatusRequest is the body of PATCH /v1/agents/{agent_id}/status.
type AgentStatusRequest struct {
	// Status is draft, approved, suspended or retired.
	Status string `json:"status"`
}

// Agent is one agent as every /v1/agents route answers it (GET /v1/agents:
// a bare array). Every field is present; unset optional strings are null,
// permitted_roles and warnings are lists, never null.
type Agent struct {
	AgentID         string    `json:"agent_id"`
	AgentRole       string    `json:"agent_role"`
	DisplayName     *string   `json:"display_name"`
	Description     *string   `json:"description"`
	Owner           *string   `json:"owner"`
	OwnerTeam       *string   `json:"owner_team"`
	Framework       *string   `json:"framework"`
	PolicyName      *string   `json:"policy_name"`
	PolicyID        *string   `json:"policy_id"`
	PermittedRoles  []string  `json:"permitted_roles"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	// Warnings say how the agent's policy binding resolves when that needs
	// saying, for example a policy_name that names no policy yet; empty
	// when there is nothing to say.
	Warnings []string `json:"warnings"`
}
