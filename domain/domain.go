// Package domain is the pure core of custos: the facts (events) it records,
// the state they fold into, and the rules that decide new facts. Subpackages
// hold one concern each (keys: credentials; policy: access policies and
// evaluation); this package ties their events and state together.
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

	"github.com/custos-dev/custos/domain/keys"
)

// ErrUnknownEvent is returned by Decode for an event type no subdomain knows.
var ErrUnknownEvent = errors.New("domain: unknown event type")

// Event is a past-tense fact with a stable wire name (for example
// "key.created"). Wire names never derive from Go type names and are never
// renamed.
type Event interface {
	EventType() string
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
	switch {
	case strings.HasPrefix(typ, "key."):
		ev, err := keys.Decode(typ, payload)
		if err != nil {
			return nil, fmt.Errorf("domain: decode %s: %w", typ, err)
		}
		return ev, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, typ)
}

// State is every current table derived from the log. The zero value is not
// usable; call NewState.
type State struct {
	Keys *keys.State
}

// NewState returns the empty state before genesis.
func NewState() *State {
	return &State{Keys: &keys.State{}}
}

// Apply folds one event into the state. It is the one fold used for live
// state, start-up replay and point-in-time replay; it never re-runs command
// rules.
func (s *State) Apply(e Event) error {
	switch {
	case strings.HasPrefix(e.EventType(), "key."):
		return s.Keys.Apply(e)
	}
	return fmt.Errorf("%w: %q", ErrUnknownEvent, e.EventType())
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	return &State{Keys: s.Keys.Clone()}
}
