package agents

import (
	"slices"
	"time"
)

// Status is the lifecycle state of an agent. Its values are stable wire
// values: append-only, never renamed.
type Status string

// The agent statuses. Only an approved agent passes step 1 (identity) of an
// evaluation.
const (
	// StatusDraft is the status of every newly registered agent.
	StatusDraft Status = "draft"
	// StatusApproved agents may be evaluated.
	StatusApproved Status = "approved"
	// StatusSuspended agents are temporarily denied; they may be approved
	// again.
	StatusSuspended Status = "suspended"
	// StatusRetired agents are denied for good. Retired is final.
	StatusRetired Status = "retired"
)

// Valid reports whether s is one of the four statuses (exact, lowercase).
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusApproved, StatusSuspended, StatusRetired:
		return true
	}
	return false
}

// ParseStatus returns s as a Status, or a *ValidationError on field "status"
// if s is not one of draft, approved, suspended, retired (exact, lowercase).
func ParseStatus(s string) (Status, error) {
	if st := Status(s); st.Valid() {
		return st, nil
	}
	return "", &ValidationError{Field: "status", Problem: "unknown status '" + s + "' (want draft, approved, suspended or retired)"}
}

// CanTransition reports whether the lifecycle allows an agent to move from
// from to to (see the transitions table in the package doc). It is false for
// from == to and for every move out of retired.
func CanTransition(from, to Status) bool {
	switch from {
	case StatusDraft:
		return to == StatusApproved || to == StatusRetired
	case StatusApproved:
		return to == StatusSuspended || to == StatusRetired
	case StatusSuspended:
		return to == StatusApproved || to == StatusRetired
	}
	return false
}

// Agent is one registered agent. It is the payload of agent.registered and
// agent.updated, so its JSON form is part of the log and its field names
// never change. Optional strings and an empty PermittedRoles are omitted
// from JSON; an empty PermittedRoles is always nil (absent and empty mean the
// same). Times are UTC.
type Agent struct {
	// AgentID identifies the agent; it is the agent_id of evaluation
	// requests. It never changes.
	AgentID string `json:"agent_id"`
	// AgentRole is the agent's own (canonical) role.
	AgentRole   string `json:"agent_role"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	Owner       string `json:"owner,omitempty"`
	OwnerTeam   string `json:"owner_team,omitempty"`
	Framework   string `json:"framework,omitempty"`
	// PolicyName optionally binds the agent to the policy with this name,
	// resolved at each evaluation (it may name no policy yet); empty means
	// the policy is found by AgentRole.
	PolicyName string `json:"policy_name,omitempty"`
	// PolicyID optionally binds the agent to the policy with this
	// policy_id, resolved at each evaluation like PolicyName and before it:
	// a binding by id wins over one by name when both resolve.
	PolicyID string `json:"policy_id,omitempty"`
	// PermittedRoles are roles the agent may claim besides AgentRole, in
	// registration order; they may include AgentRole itself. A permitted
	// claim is evaluated under AgentRole.
	PermittedRoles  []string  `json:"permitted_roles,omitempty"`
	Status          Status    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	StatusChangedAt time.Time `json:"status_changed_at"`
}

// MayClaim reports whether the agent may act as role: role is its own
// AgentRole or one of its PermittedRoles (exact, case-sensitive). It does not
// allocate.
func (a Agent) MayClaim(role string) bool {
	return role == a.AgentRole || slices.Contains(a.PermittedRoles, role)
}

// ClaimableRoles returns every role the agent may claim, the list printed in
// the role_not_permitted reason: PermittedRoles as given when they include
// AgentRole, otherwise AgentRole first, then PermittedRoles in order. It
// returns a new slice (one allocation); the evaluator only needs it on the
// deny path.
func (a Agent) ClaimableRoles() []string {
	if slices.Contains(a.PermittedRoles, a.AgentRole) {
		return slices.Clone(a.PermittedRoles)
	}
	out := make([]string, 0, 1+len(a.PermittedRoles))
	out = append(out, a.AgentRole)
	return append(out, a.PermittedRoles...)
}

// IsApproved reports whether the agent's status is approved, the only status
// that passes the identity step of an evaluation.
func (a Agent) IsApproved() bool { return a.Status == StatusApproved }

// clone returns a copy of a that shares no memory with it, with an empty
// PermittedRoles normalised to nil.
func (a Agent) clone() Agent {
	if len(a.PermittedRoles) == 0 {
		a.PermittedRoles = nil
	} else {
		a.PermittedRoles = slices.Clone(a.PermittedRoles)
	}
	return a
}
