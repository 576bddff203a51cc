package tenants

import (
	"maps"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/internal/codec"
)

// Wire names of the tenant events. They are stored in the log and never
// change.
const (
	TypeTenantCreated   = "tenant.created"
	TypeTenantSuspended = "tenant.suspended"
	TypeTenantResumed   = "tenant.resumed"
)

// Event is a tenant event. The implementations are TenantCreated,
// TenantSuspended and TenantResumed (values); Decode and Apply accept those
// and nothing else.
type Event interface {
	// EventType returns the stable wire name of the event.
	EventType() string
}

// TenantCreated records a new tenant.
type TenantCreated struct {
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// TenantSuspended records that a tenant's keys stop working at SuspendedAt.
type TenantSuspended struct {
	TenantID    string    `json:"tenant_id"`
	Reason      string    `json:"reason,omitempty"`
	SuspendedAt time.Time `json:"suspended_at"`
}

// TenantResumed records that a suspended tenant's keys work again.
type TenantResumed struct {
	TenantID  string    `json:"tenant_id"`
	ResumedAt time.Time `json:"resumed_at"`
}

// EventType returns TypeTenantCreated.
func (TenantCreated) EventType() string { return TypeTenantCreated }

// EventType returns TypeTenantSuspended.
func (TenantSuspended) EventType() string { return TypeTenantSuspended }

// EventType returns TypeTenantResumed.
func (TenantResumed) EventType() string { return TypeTenantResumed }

var decoders = map[string]codec.Decoder[Event]{
	TypeTenantCreated:   codec.As[TenantCreated, Event](nil),
	TypeTenantSuspended: codec.As[TenantSuspended, Event](nil),
	TypeTenantResumed:   codec.As[TenantResumed, Event](nil),
}

// EventTypes returns the wire name of every tenant event, sorted.
func EventTypes() []string { return slices.Sorted(maps.Keys(decoders)) }

// Decode parses the JSON payload of an event of wire type typ and returns
// it as a value. An unknown typ yields an error wrapping ErrUnknownEvent;
// unknown JSON fields are ignored (a newer release may add fields).
func Decode(typ string, payload []byte) (Event, error) {
	return codec.Decode("tenants", decoders, typ, payload, ErrUnknownEvent)
}
