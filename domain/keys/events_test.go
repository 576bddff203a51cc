package keys_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
)

func sampleCreated() keys.KeyCreated {
	return keys.KeyCreated{
		KeyID:     keyID(1),
		Name:      "ci runner",
		Scope:     keys.ScopeEvaluate,
		Prefix:    "cst_AbCdEf",
		KeyHash:   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		CreatedAt: t0.Add(123456789 * time.Nanosecond),
		ExpiresAt: t0.Add(90 * day),
		AgentID:   "agent-1",
	}
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	created := sampleCreated()
	newKey := created
	newKey.KeyID = keyID(2)
	newKey.RotatedFrom = keyID(1)
	tests := []struct {
		name     string
		ev       keys.Event
		wantType string
		wantJSON string
	}{
		{
			name:     "created",
			ev:       created,
			wantType: "key.created",
			wantJSON: `{"key_id":"key_00000000000000000000000001","name":"ci runner","scope":"evaluate","prefix":"cst_AbCdEf","key_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","created_at":"2026-03-01T12:00:00.123456789Z","expires_at":"2026-05-30T12:00:00Z","agent_id":"agent-1"}`,
		},
		{
			name:     "created without agent",
			ev:       keys.KeyCreated{KeyID: keyID(1), Name: "a", Scope: keys.ScopeAdmin, Prefix: "cst_000000", KeyHash: created.KeyHash, CreatedAt: t0, ExpiresAt: t0.Add(day)},
			wantType: "key.created",
			wantJSON: `{"key_id":"key_00000000000000000000000001","name":"a","scope":"admin","prefix":"cst_000000","key_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","created_at":"2026-03-01T12:00:00Z","expires_at":"2026-03-02T12:00:00Z"}`,
		},
		{
			name:     "rotated",
			ev:       keys.KeyRotated{OldKeyID: keyID(1), OldRevokedAt: t0.Add(time.Hour), NewKey: newKey},
			wantType: "key.rotated",
			wantJSON: `{"old_key_id":"key_00000000000000000000000001","old_revoked_at":"2026-03-01T13:00:00Z","new_key":{"key_id":"key_00000000000000000000000002","name":"ci runner","scope":"evaluate","prefix":"cst_AbCdEf","key_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","created_at":"2026-03-01T12:00:00.123456789Z","expires_at":"2026-05-30T12:00:00Z","agent_id":"agent-1","rotated_from":"key_00000000000000000000000001"}}`,
		},
		{
			name:     "revoked",
			ev:       keys.KeyRevoked{KeyID: keyID(1), RevokedAt: t0},
			wantType: "key.revoked",
			wantJSON: `{"key_id":"key_00000000000000000000000001","revoked_at":"2026-03-01T12:00:00Z"}`,
		},
		{
			name:     "used",
			ev:       keys.KeyUsed{KeyID: keyID(1), UsedAt: t0},
			wantType: "key.used",
			wantJSON: `{"key_id":"key_00000000000000000000000001","used_at":"2026-03-01T12:00:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantType, tt.ev.EventType())
			typ, payload, err := encode(tt.ev)
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, typ)
			assert.JSONEq(t, tt.wantJSON, string(payload))
			assert.Equal(t, tt.wantJSON, string(payload), "byte-exact, fixed field order")

			got, err := keys.Decode(typ, payload)
			require.NoError(t, err)
			assert.Equal(t, tt.ev, got)

			// Pointers encode the same way.
			_, viaPtr, err := encode(ptrTo(tt.ev))
			require.NoError(t, err)
			assert.Equal(t, payload, viaPtr)
		})
	}
}

func ptrTo(e keys.Event) keys.Event {
	switch v := e.(type) {
	case keys.KeyCreated:
		return &v
	case keys.KeyRotated:
		return &v
	case keys.KeyRevoked:
		return &v
	case keys.KeyUsed:
		return &v
	}
	panic("unknown event")
}

func TestDecidedEventsRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c, _ := h.create(keys.CreateCommand{Name: "k", Scope: "admin"}, t0)
	r, _ := h.rotate(keys.RotateCommand{KeyID: c.KeyID, GraceSeconds: ptr(60)}, t0.Add(time.Hour))
	require.Len(t, h.log, 2)
	for i, want := range []keys.Event{c, r} {
		got, err := keys.Decode(h.log[i].typ, h.log[i].payload)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}

type otherEvent struct{}

func (otherEvent) EventType() string { return "policy.updated" }

func TestUnknownEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   keys.Event
	}{
		{"nil", nil},
		{"foreign", otherEvent{}},
		{"nil pointer", (*keys.KeyRevoked)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, (&keys.State{}).Apply(tt.ev), keys.ErrUnknownEvent)
		})
	}

	t.Run("decode unknown type", func(t *testing.T) {
		t.Parallel()
		_, err := keys.Decode("key.deleted", []byte(`{}`))
		require.ErrorIs(t, err, keys.ErrUnknownEvent)
		_, err = keys.Decode("KeyCreated", []byte(`{}`))
		require.ErrorIs(t, err, keys.ErrUnknownEvent, "wire names never derive from Go names")
	})
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typ, payload string
	}{
		{"not json", keys.TypeKeyCreated, `nope`},
		{"trailing data", keys.TypeKeyRevoked, `{"key_id":"x","revoked_at":"2026-03-01T12:00:00Z"} {}`},
		{"bad time", keys.TypeKeyUsed, `{"key_id":"x","used_at":"yesterday"}`},
		{"wrong type", keys.TypeKeyRotated, `{"old_key_id":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := keys.Decode(tt.typ, []byte(tt.payload))
			require.Error(t, err)
			var syntax *json.SyntaxError
			var typeErr *json.UnmarshalTypeError
			var timeErr *time.ParseError
			assert.True(t, errors.As(err, &syntax) || errors.As(err, &typeErr) || errors.As(err, &timeErr), "wraps the JSON error: %v", err)
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	t.Parallel()
	ev, err := keys.Decode(keys.TypeKeyUsed, []byte(`{"key_id":"k","used_at":"2026-03-01T12:00:00Z","added_later":1}`))
	require.NoError(t, err)
	assert.Equal(t, keys.KeyUsed{KeyID: "k", UsedAt: t0}, ev)
}
