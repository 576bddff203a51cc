package agents

import (
	"encoding/json"
	"fmt"
	"time"
)

// Wire names of the agent events. They are stored in the log and never
// change.
const (
	TypeAgentRegistered    = "agent.registered"
	TypeAgentUpdated       = "agent.updated"
	TypeAgentStatusChanged = "agent.status_changed"
)

// Event is an agent event: a past-tense fact that State.Apply folds into the
// agent registry. The implementations are AgentRegistered, AgentUpdated and
// AgentStatusChanged; Encode, Decode and Apply accept those (values or
// non-nil pointers) and nothing else.
type Event interface {
	// EventType returns the stable wire name of the event.
	EventType() string
}

// AgentRegistered records a new agent. Agent is complete and its status is
// draft; created_at, updated_at and status_changed_at are the registration
// time. Its payload is {"agent": {...}}.
type AgentRegistered struct {
	Agent Agent `json:"agent"`
}

// AgentUpdated records the complete agent after a (partial) update: the
// fields the command did not touch keep their values; agent_id, status,
// created_at and status_changed_at are unchanged and updated_at is the
// update time. Its payload is {"agent": {...}}.
type AgentUpdated struct {
	Agent Agent `json:"agent"`
}

// AgentStatusChanged records that an agent moved from one status to another
// at ChangedAt (UTC), which also becomes its updated_at and
// status_changed_at.
type AgentStatusChanged struct {
	AgentID   string    `json:"agent_id"`
	From      Status    `json:"from"`
	To        Status    `json:"to"`
	ChangedAt time.Time `json:"changed_at"`
}

// EventType returns TypeAgentRegistered.
func (AgentRegistered) EventType() string { return TypeAgentRegistered }

// EventType returns TypeAgentUpdated.
func (AgentUpdated) EventType() string { return TypeAgentUpdated }

// EventType returns TypeAgentStatusChanged.
func (AgentStatusChanged) EventType() string { return TypeAgentStatusChanged }

var (
	_ Event = AgentRegistered{}
	_ Event = AgentUpdated{}
	_ Event = AgentStatusChanged{}
)

// Encode returns the wire type and the JSON payload of e. The encoding is
// deterministic (fixed field order), so the payload can be hashed as is;
// json.Marshal of the event gives the same bytes. An event of another type
// yields an error wrapping ErrUnknownEvent.
func Encode(e Event) (typ string, payload []byte, err error) {
	e, err = concrete(e)
	if err != nil {
		return "", nil, err
	}
	payload, err = json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("agents: encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), payload, nil
}

// Decode parses a payload written by Encode. It returns the event as a value
// (AgentRegistered, not *AgentRegistered). An unknown typ yields an error
// wrapping ErrUnknownEvent. Unknown JSON fields are ignored so that a log
// written by a newer version that only added fields still decodes; Apply
// checks that required fields are present. An empty permitted_roles list
// decodes as nil, so Decode(Encode(e)) equals e for every event the deciders
// return.
func Decode(typ string, payload []byte) (Event, error) {
	var (
		e   Event
		err error
	)
	switch typ {
	case TypeAgentRegistered:
		var v AgentRegistered
		err = json.Unmarshal(payload, &v)
		v.Agent = v.Agent.clone()
		e = v
	case TypeAgentUpdated:
		var v AgentUpdated
		err = json.Unmarshal(payload, &v)
		v.Agent = v.Agent.clone()
		e = v
	case TypeAgentStatusChanged:
		var v AgentStatusChanged
		err = json.Unmarshal(payload, &v)
		e = v
	default:
		return nil, fmt.Errorf("agents: decode %q: %w", typ, ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("agents: decode %s: %w", typ, err)
	}
	return e, nil
}

// concrete returns e as one of the three event values, dereferencing
// pointers.
func concrete(e Event) (Event, error) {
	switch v := e.(type) {
	case AgentRegistered, AgentUpdated, AgentStatusChanged:
		return v, nil
	case *AgentRegistered:
		if v != nil {
			return *v, nil
		}
	case *AgentUpdated:
		if v != nil {
			return *v, nil
		}
	case *AgentStatusChanged:
		if v != nil {
			return *v, nil
		}
	}
	return nil, fmt.Errorf("agents: event %T: %w", e, ErrUnknownEvent)
}
