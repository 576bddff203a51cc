package alerts

import (
	"errors"
	"time"

	"github.com/custos-dev/custos/domain/internal/codec"
)

// Wire names of the alert events. They are stored in the log and never
// change.
const (
	TypeRuleSet     = "alert.rule_set"
	TypeRuleDeleted = "alert.rule_deleted"
	TypeRaised      = "alert.raised"
)

// Errors of the subdomain. Match with errors.Is.
var (
	// ErrUnknownEvent reports an event type this package does not know.
	ErrUnknownEvent = errors.New("alerts: unknown event type")
	// ErrInconsistent reports an event that does not fit the State it is
	// applied to; Apply leaves the State unchanged.
	ErrInconsistent = errors.New("alerts: event does not fit the alert state")
	// ErrNotFound reports that no rule has the given rule_id (HTTP 404).
	ErrNotFound = errors.New("alerts: rule not found")
)

// Event is an alert event: RuleSet, RuleDeleted or Raised.
type Event interface {
	// EventType returns the stable wire name of the event.
	EventType() string
}

// RuleSet records a rule created or replaced as a whole at SetAt.
type RuleSet struct {
	Rule  Rule      `json:"rule"`
	SetAt time.Time `json:"set_at"`
}

// RuleDeleted records that rule RuleID stopped applying at DeletedAt.
type RuleDeleted struct {
	RuleID    string    `json:"rule_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Raised records an alert: what the operator is told, under which rule,
// about what (Subject, e.g. "role:loan_officer", "key:key_01..." or
// "chain:default"), over which window and with which figures (for
// example {"count": 12, "threshold": 10}). DedupeKey, when not empty,
// makes the alert once-only: State refuses a second alert with the same
// key (see Raise), across restarts, because the first is on the chain.
type Raised struct {
	AlertID     string           `json:"alert_id"`
	RuleID      string           `json:"rule_id"`
	Kind        string           `json:"kind"`
	Subject     string           `json:"subject"`
	DedupeKey   string           `json:"dedupe_key,omitempty"`
	WindowStart *time.Time       `json:"window_start,omitempty"`
	WindowEnd   *time.Time       `json:"window_end,omitempty"`
	Figures     map[string]int64 `json:"figures,omitempty"`
	Detail      string           `json:"detail"`
	RaisedAt    time.Time        `json:"raised_at"`
}

// EventType returns TypeRuleSet.
func (RuleSet) EventType() string { return TypeRuleSet }

// EventType returns TypeRuleDeleted.
func (RuleDeleted) EventType() string { return TypeRuleDeleted }

// EventType returns TypeRaised.
func (Raised) EventType() string { return TypeRaised }

var (
	_ Event = RuleSet{}
	_ Event = RuleDeleted{}
	_ Event = Raised{}
)

// decoders maps each wire name to its event. An empty days list decodes as
// nil, so decoding the encoding of an event gives the event back.
var decoders = map[string]codec.Decoder[Event]{
	TypeRuleSet: codec.As[RuleSet, Event](func(e *RuleSet) {
		if len(e.Rule.Days) == 0 {
			e.Rule.Days = nil
		}
	}),
	TypeRuleDeleted: codec.As[RuleDeleted, Event](nil),
	TypeRaised:      codec.As[Raised, Event](nil),
}

// Decode parses the JSON payload of an event of wire type typ. It returns
// the event as a value. An unknown typ yields an error wrapping
// ErrUnknownEvent; unknown JSON fields are ignored.
func Decode(typ string, payload []byte) (Event, error) {
	return codec.Decode("alerts", decoders, typ, payload, ErrUnknownEvent)
}
