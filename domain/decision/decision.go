// Package decision holds the decision.made fact and the session projection
// derived from it.
//
// Every evaluation is recorded as one Made event holding the whole request,
// the outcome, the reason, the deciding policy and version, and the calling
// key. The first decision that names a session starts it: its Made carries
// SessionStarted, fixing the owner role and agent and the expiry (the owner
// policy's session_ttl_minutes at that moment; activity never extends it).
// Sessions are therefore rebuilt exactly by replaying decisions.
//
// The package is pure: no I/O, no clock, no randomness. Sessions is not safe
// for concurrent mutation; callers serialize Apply (see package projections).
package decision

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain/policy"
)

// TypeMade is the stable wire name of Made.
const TypeMade = "decision.made"

// Outcomes, as answered on the wire.
const (
	Allow = "ALLOW"
	Deny  = "DENY"
)

// Errors.
var (
	// ErrUnknownEvent is returned by Decode for another type than TypeMade.
	ErrUnknownEvent = errors.New("decision: unknown event type")
	// ErrInconsistent means a Made does not fit the sessions it is applied to
	// (a second start of one session).
	ErrInconsistent = errors.New("decision: event does not fit the session state")
)

// Made is the fact that one evaluation was decided.
type Made struct {
	// Request is the request as evaluated (action defaulted).
	Request policy.Request `json:"request"`
	// Decision is Allow or Deny.
	Decision string `json:"decision"`
	// Reason is the exact reason text of docs/policy-semantics.md.
	Reason string `json:"reason"`
	// PolicyName is the deciding policy's name or a fixed name such as
	// "default_deny".
	PolicyName string `json:"policy_name"`
	// PolicyID and PolicyVersion identify the deciding policy; empty and 0
	// when no policy decided.
	PolicyID      string `json:"policy_id,omitempty"`
	PolicyVersion int    `json:"policy_version,omitempty"`
	// PolicyResolution is the rule that chose the deciding policy:
	// policy.ResolvedBound (the agent's binding) or policy.ResolvedRole (the
	// role's only policy); empty when no policy decided. Records written
	// before it existed decode with it empty.
	PolicyResolution string `json:"policy_resolution,omitempty"`
	// DenialType is empty for Allow.
	DenialType string `json:"denial_type,omitempty"`
	// EvaluatedRole is the role whose policy was evaluated (the agent's
	// canonical role); empty when the decision came before the role lock.
	EvaluatedRole string `json:"evaluated_role,omitempty"`
	// KeyID is the API key that asked.
	KeyID string `json:"key_id"`
	// EvaluatedAt is when it was decided.
	EvaluatedAt time.Time `json:"evaluated_at"`
	// SessionStarted is set when this decision started its session.
	SessionStarted *SessionStarted `json:"session_started,omitempty"`
}

// EventType implements the domain's Event.
func (Made) EventType() string { return TypeMade }

// Allowed reports whether the outcome is Allow.
func (m Made) Allowed() bool { return m.Decision == Allow }

// SessionStarted fixes a session's owner and lifetime when it is created.
type SessionStarted struct {
	SessionID    string     `json:"session_id"`
	OwnerRole    string     `json:"owner_role"`
	OwnerAgentID string     `json:"owner_agent_id"`
	StartedAt    time.Time  `json:"started_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
}

// NewMade builds the Made for decision d on req at now.
func NewMade(req policy.Request, d policy.Decision, evaluatedRole, keyID string, now time.Time) Made {
	m := Made{
		Request:       req,
		Decision:      Deny,
		Reason:        d.Reason,
		PolicyName:    d.PolicyName,
		PolicyID:      d.PolicyID,
		PolicyVersion: d.PolicyVersion,
		DenialType:    d.DenialType,
		EvaluatedRole: evaluatedRole,
		KeyID:         keyID,
		EvaluatedAt:   now.UTC(),
	}
	if d.Allowed {
		m.Decision = Allow
	}
	return m
}

// Decode parses a decision.made payload.
func Decode(typ string, payload []byte) (Made, error) {
	if typ != TypeMade {
		return Made{}, fmt.Errorf("%w: %q", ErrUnknownEvent, typ)
	}
	var m Made
	if err := json.Unmarshal(payload, &m); err != nil {
		return Made{}, fmt.Errorf("decision: decode %s: %w", typ, err)
	}
	return m, nil
}
