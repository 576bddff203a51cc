package keys

import (
	"encoding/json"
	"fmt"
	"time"
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

// Encode returns the wire type and the JSON payload of e. The encoding is
// deterministic (fixed field order), so the payload can be hashed as is. An
// event of another type yields an error wrapping ErrUnknownEvent.
func Encode(e Event) (typ string, payload []byte, err error) {
	e, err = concrete(e)
	if err != nil {
		return "", nil, err
	}
	payload, err = json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("keys: encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), payload, nil
}

// Decode parses a payload written by Encode. It returns the event as a value
// (KeyCreated, not *KeyCreated). An unknown typ yields an error wrapping
// ErrUnknownEvent. Unknown JSON fields are ignored so that a log written by a
// newer version that only added fields still decodes; Apply checks that
// required fields are present.
func Decode(typ string, payload []byte) (Event, error) {
	var (
		e   Event
		err error
	)
	switch typ {
	case TypeKeyCreated:
		var v KeyCreated
		err = json.Unmarshal(payload, &v)
		e = v
	case TypeKeyRotated:
		var v KeyRotated
		err = json.Unmarshal(payload, &v)
		e = v
	case TypeKeyRevoked:
		var v KeyRevoked
		err = json.Unmarshal(payload, &v)
		e = v
	case TypeKeyUsed:
		var v KeyUsed
		err = json.Unmarshal(payload, &v)
		e = v
	default:
		return nil, fmt.Errorf("keys: decode %q: %w", typ, ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: decode %s: %w", typ, err)
	}
	return e, nil
}

// concrete returns e as one of the four event values, dereferencing
// pointers.
func concrete(e Event) (Event, error) {
	switch v := e.(type) {
	case KeyCreated, KeyRotated, KeyRevoked, KeyUsed:
		return v, nil
	case *KeyCreated:
		if v != nil {
			return *v, nil
		}
	case *KeyRotated:
		if v != nil {
			return *v, nil
		}
	case *KeyRevoked:
		if v != nil {
			return *v, nil
		}
	case *KeyUsed:
		if v != nil {
			return *v, nil
		}
	}
	return nil, fmt.Errorf("keys: event %T: %w", e, ErrUnknownEvent)
}
