package agents

import (
	"github.com/custos-dev/custos/domain/internal/codec"
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

// decoders maps each wire name to its event. An empty permitted_roles list
// decodes as nil, so decoding the encoding of an event gives the event back.
var decoders = map[string]codec.Decoder[Event]{
	TypeAgentRegistered:    codec.As[AgentRegistered, Event](func(e *AgentRegistered) { e.Agent = e.Agent.clone() }),
	TypeAgentUpdated:       codec.As[AgentUpdated, Event](func(e *AgentUpdated) { e.Agent = e.Agent.clone() }),
	TypeAgentStatusChanged: codec.As[AgentStatusChanged, Event](nil),
}

// Decode parses the JSON payload of an event of wire type typ (events are
// stored as their json.Marshal encoding). It returns the event as a value
// (AgentRegistered, not *AgentRegistered). An unknown typ yields an error
// wrapping ErrUnknownEvent. Unknown JSON fields are ignored so that a log
// written by a newer version that only added fields still decodes; Apply
// checks that required fields are present.
func Decode(typ string, payload []byte) (Event, error) {
	return codec.Decode("agents", decoders, typ, payload, ErrUnknownEvent)
}
