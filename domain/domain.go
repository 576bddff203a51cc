// Package domain is the pure core of custos: the facts (events) it records,
// the state they fold into, and the rules that decide new facts. Subpackages
// hold one concern each (keys: credentials; policy: access policies and
// their evaluation; agents: the agent registry; decision: decisions and the
// sessions derived from them); this package ties their events and state
// together and runs the full evaluation order across them (Evaluate).
//
// The package does no I/O and reads no clock and no randomness: callers pass
// the time and entropy in. State is not safe for concurrent mutation; the
// projections package serializes access to it.
package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
)

// ErrUnknownEvent is returned by Decode for an event type no subdomain knows.
var ErrUnknownEvent = errors.New("domain: unknown event type")

// Event is a past-tense fact with a stable wire name (for example
// "key.created"). Wire names never derive from Go type names and are never
// renamed.
type Event interface {
	EventType() string
}

// EventTypes returns the wire name of every event type the subdomains
// record, in a fixed order; new types are appended. Decode knows each.
func EventTypes() []string {
	return []string{
		keys.TypeKeyCreated, keys.TypeKeyRotated, keys.TypeKeyRevoked, keys.TypeKeyUsed,
		policy.TypePolicyCreated, policy.TypePolicyUpdated, policy.TypePolicyDeleted,
		agents.TypeAgentRegistered, agents.TypeAgentUpdated, agents.TypeAgentStatusChanged,
		decision.TypeMade,
		alerts.TypeRuleSet, alerts.TypeRuleDeleted, alerts.TypeRaised,
		tenants.TypeTenantCreated, tenants.TypeTenantSuspended, tenants.TypeTenantResumed,
	}
}

// Meta is where and when an event sits in the log.
type Meta struct {
	Seq   uint64
	ID    string
	Time  time.Time
	Actor string
}

// Encode returns the stored payload of e: its JSON encoding.
func Encode(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("domain: encode %s: %w", e.EventType(), err)
	}
	return b, nil
}

// Decode parses the payload of an event of the given type.
func Decode(typ string, payload []byte) (Event, error) {
	var ev Event
	var err error
	switch {
	case strings.HasPrefix(typ, "key."):
		ev, err = keys.Decode(typ, payload)
	case strings.HasPrefix(typ, "policy."):
		ev, err = policy.Decode(typ, payload)
	case strings.HasPrefix(typ, "agent."):
		ev, err = agents.Decode(typ, payload)
	case typ == decision.TypeMade:
		ev, err = decision.Decode(typ, payload)
	case strings.HasPrefix(typ, "alert."):
		ev, err = alerts.Decode(typ, payload)
	case strings.HasPrefix(typ, "tenant."):
		ev, err = tenants.Decode(typ, payload)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", typ, err)
	}
	return ev, nil
}

// State is every current table derived from the log. The zero value is not
// usable; call NewState.
type State struct {
	Keys     *keys.State
	Policies *policy.State
	Agents   *agents.State
	Sessions *decision.Sessions
	Alerts   *alerts.State
	// Tenants is every tenant on the system chain; on a tenant's own chain
	// it is that one tenant (its superadmin-made lifecycle), empty on a
	// chain written before tenants existed.
	Tenants *tenants.State
}

// NewState returns the empty state before genesis.
func NewState() *State {
	return &State{Keys: &keys.State{}, Policies: &policy.State{}, Agents: &agents.State{}, Sessions: &decision.Sessions{}, Alerts: &alerts.State{}, Tenants: &tenants.State{}}
}

// Apply folds one event, recorded at m, into the state. It is the one fold
// used for live state, start-up replay and point-in-time replay; it never
// re-runs command rules.
func (s *State) Apply(m Meta, e Event) error {
	switch t := e.EventType(); {
	case t == decision.TypeMade:
		made, ok := e.(decision.Made)
		if !ok {
			return fmt.Errorf("%w: %s carried by %T", ErrUnknownEvent, t, e)
		}
		return s.Sessions.Apply(m.ID, m.Time, made)
	case strings.HasPrefix(t, "key."):
		return s.Keys.Apply(e)
	case strings.HasPrefix(t, "policy."):
		return s.Policies.Apply(e)
	case strings.HasPrefix(t, "agent."):
		return s.Agents.Apply(e)
	case strings.HasPrefix(t, "alert."):
		return s.Alerts.Apply(m.Seq, e)
	case strings.HasPrefix(t, "tenant."):
		return s.Tenants.Apply(e)
	}
	return fmt.Errorf("%w: %q", ErrUnknownEvent, e.EventType())
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	return &State{Keys: s.Keys.Clone(), Policies: s.Policies.Clone(), Agents: s.Agents.Clone(), Sessions: s.Sessions.Clone(), Alerts: s.Alerts.Clone(), Tenants: s.Tenants.Clone()}
}
