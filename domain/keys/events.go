package keys

import (
	"maps"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/internal/codec"
)

// Wire names of the key events. They are stored in the log and never change.
const (
	TypeKeyCreated = "key.created"
	TypeKeyRotated = "key.rotated"
	TypeKeyRevoked = "key.revoked"
	TypeKeyUsed    = "key.used"
)

// Event is a key event: a past-tense fact that State.Apply folds into the
// key projection. The implementations are KeyCreated, KeyRotated, KeyRevoked
// and KeyUsed; Encode, Decode and Apply accept those (values or non-nil
// pointers) and nothing else.
type Event interface {
	// EventType returns the stable wire name of the event.
	EventType() string
}

// KeyCreated records a new key. It is also embedded in KeyRotated for the
// successor key. Times are UTC.
type KeyCreated struct {
	KeyID  string `json:"key_id"`
	Name   string `json:"name"`
	Scope  Scope  `json:"scope"`
	Prefix string `json:"prefix"`
	// KeyHash is the lower-case hex SHA-256 of the key (see Hash).
	KeyHash   string    `json:"key_hash"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// AgentID optionally binds an evaluate key to one agent.
	AgentID string `json:"agent_id,omitempty"`
	// RotatedFrom is set only inside KeyRotated, to its OldKeyID. A
	// stand-alone key.created never carries it.
	RotatedFrom string `json:"rotated_from,omitempty"`
}

// KeyRotated records that OldKeyID was replaced by NewKey. The old key stops
// working at OldRevokedAt: the rotation time, or later by a grace period, but
// never after the old key's own expiry.
type KeyRotated struct {
	OldKeyID     string     `json:"old_key_id"`
	OldRevokedAt time.Time  `json:"old_revoked_at"`
	NewKey       KeyCreated `json:"new_key"`
}

// KeyRevoked records that a key stops working at RevokedAt.
type KeyRevoked struct {
	KeyID     string    `json:"key_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

// KeyUsed records that a key authenticated a request at UsedAt. It is
// recorded at most once per UseRecordInterval per key (see ShouldRecordUse).
type KeyUsed struct {
	KeyID  string    `json:"key_id"`
	UsedAt time.Time `json:"used_at"`
}

// EventType returns TypeKeyCreated.
func (KeyCreated) EventType() string { return TypeKeyCreated }

// EventType returns TypeKeyRotated.
func (KeyRotated) EventType() string { return TypeKeyRotated }

// EventType returns TypeKeyRevoked.
func (KeyRevoked) EventType() string { return TypeKeyRevoked }

// EventType returns TypeKeyUsed.
func (KeyUsed) EventType() string { return TypeKeyUsed }

var (
	_ Event = KeyCreated{}
	_ Event = KeyRotated{}
	_ Event = KeyRevoked{}
	_ Event = KeyUsed{}
)

// decoders maps each wire name to its event.
var decoders = map[string]codec.Decoder[Event]{
	TypeKeyCreated: codec.As[KeyCreated, Event](nil),
	TypeKeyRotated: codec.As[KeyRotated, Event](nil),
	TypeKeyRevoked: codec.As[KeyRevoked, Event](nil),
	TypeKeyUsed:    codec.As[KeyUsed, Event](nil),
}

// EventTypes returns the wire name of every key event, sorted: the events
// Decode and Apply know.
func EventTypes() []string { return slices.Sorted(maps.Keys(decoders)) }

// Decode parses the JSON payload of an event of wire type typ (events are
// stored as their json.Marshal encoding, with fixed field order, so the
// payload can be hashed as is). It returns the event as a value (KeyCreated,
// not *KeyCreated). An unknown typ yields an error wrapping ErrUnknownEvent.
// Unknown JSON fields are ignored so that a log written by a newer version
// that only added fields still decodes; Apply checks that required fields
// are present.
func Decode(typ string, payload []byte) (Event, error) {
	return codec.Decode("keys", decoders, typ, payload, ErrUnknownEvent)
}
