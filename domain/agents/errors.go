package agents

import (
	"errors"
	"fmt"
)

// ErrNotFound reports that no agent has the given agent_id (HTTP 404).
var ErrNotFound = errors.New("agents: agent not found")

// ErrConflict is the parent of every error that reports a request which
// contradicts the registry's current state (HTTP 409). ErrAgentExists,
// ErrRetired and every *TransitionError satisfy errors.Is(err, ErrConflict).
var ErrConflict = errors.New("agents: conflict with the agent's current state")

// Conflict errors (HTTP 409). Each satisfies errors.Is(err, ErrConflict).
var (
	// ErrAgentExists reports that an agent with the requested agent_id is
	// already registered (retired agents included: ids are never reused).
	ErrAgentExists error = &childError{"agents: agent_id is already registered", ErrConflict}
	// ErrRetired reports that the agent is retired. Retired is final: a
	// retired agent can be neither updated nor moved to another status.
	ErrRetired error = &childError{"agents: agent is retired; retired is final", ErrConflict}
	// ErrRetiredID reports a registration that asks for the agent_id of a
	// retired agent. Ids are never reused; a registration without agent_id
	// gets a fresh one.
	ErrRetiredID error = &childError{"agents: agent_id belongs to a retired agent and is never reused", ErrConflict}
)

// ErrUnknownEvent reports an event type this package does not know, in
// Encode, Decode or Apply.
var ErrUnknownEvent = errors.New("agents: unknown event type")

// ErrInconsistent reports an event that does not fit the State it is applied
// to (unknown or duplicate agent_id, unknown status, status that does not
// match, missing times). Apply leaves the State unchanged when it returns it.
// In a log that only ever received events from the deciders it means
// corruption or a bug.
var ErrInconsistent = errors.New("agents: event does not fit the agent state")

// ValidationError reports a command field that breaks a rule (HTTP 422).
// Field is the snake_case wire name of the field ("agent_id", "agent_role",
// "display_name", "description", "owner", "owner_team", "framework",
// "policy_name", "status", "permitted_roles", or "permitted_roles[i]" for one
// entry); Problem says what is allowed. Register and Update report every
// broken rule at once, joined with errors.Join; errors.As finds the first.
type ValidationError struct {
	Field   string
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character
	// (errors.Is(err, text.ErrRefused)).
	Err error
}

func (e *ValidationError) Error() string {
	return "agents: invalid " + e.Field + ": " + e.Problem
}

// Unwrap returns the cause, or nil.
func (e *ValidationError) Unwrap() error { return e.Err }

// TransitionError reports a status change that the lifecycle does not allow
// (HTTP 409): From to To is not a legal transition, From equals To, or From
// is retired. It satisfies errors.Is(err, ErrConflict); when From is
// StatusRetired it also satisfies errors.Is(err, ErrRetired).
type TransitionError struct {
	AgentID  string
	From, To Status
}

func (e *TransitionError) Error() string {
	switch {
	case e.From == e.To:
		return fmt.Sprintf("agents: agent '%s' is already %s", e.AgentID, e.To)
	case e.From == StatusRetired:
		return fmt.Sprintf("agents: agent '%s' is retired; retired is final (cannot change to %s)", e.AgentID, e.To)
	}
	return fmt.Sprintf("agents: agent '%s' cannot change status from %s to %s", e.AgentID, e.From, e.To)
}

// Unwrap returns ErrRetired when From is retired, else ErrConflict.
func (e *TransitionError) Unwrap() error {
	if e.From == StatusRetired {
		return ErrRetired
	}
	return ErrConflict
}

// childError is a sentinel that also matches its parent with errors.Is.
type childError struct {
	msg    string
	parent error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.parent }
