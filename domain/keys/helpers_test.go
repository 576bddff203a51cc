package keys_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
)

// t0 is the fixed clock every test starts from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// keyID returns a valid key_<ULID> id that sorts by n.
func keyID(n int) string { return fmt.Sprintf("key_%026d", n) }

// entropy returns a deterministic stand-in for crypto/rand.Reader.
func entropy(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// record is one log entry as the sequencer would store it.
type record struct {
	typ     string
	payload []byte
}

// harness plays the sequencer: decide, encode (log), apply.
type harness struct {
	t     testing.TB
	state *keys.State
	log   []record
	next  int
	rng   io.Reader
	// afterCommit, if set, runs after each committed event.
	afterCommit func()
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, state: &keys.State{}, next: 1, rng: entropy(1)}
}

func (h *harness) newID() string {
	id := keyID(h.next)
	h.next++
	return id
}

// commit appends ev to the log and applies it, like the sequencer.
func (h *harness) commit(ev keys.Event) {
	h.t.Helper()
	typ, payload, err := encode(ev)
	require.NoError(h.t, err)
	h.log = append(h.log, record{typ, payload})
	require.NoError(h.t, h.state.Apply(ev))
	// Like the Ledger, take the keys the event changed: every key event
	// changes at least one, and the State must say which.
	require.NotEmpty(h.t, h.state.TakeChanged(), "%s changed no key", typ)
	if h.afterCommit != nil {
		h.afterCommit()
	}
}

func (h *harness) create(cmd keys.CreateCommand, now time.Time) (keys.KeyCreated, string) {
	h.t.Helper()
	ev, plain, err := keys.Create(h.state, cmd, now, h.newID(), h.rng)
	require.NoError(h.t, err)
	h.commit(ev)
	return ev, plain
}

func (h *harness) rotate(cmd keys.RotateCommand, now time.Time) (keys.KeyRotated, string) {
	h.t.Helper()
	ev, plain, err := keys.Rotate(h.state, cmd, now, h.newID(), h.rng)
	require.NoError(h.t, err)
	h.commit(ev)
	return ev, plain
}

func (h *harness) revoke(id, actor string, now time.Time) {
	h.t.Helper()
	ev, err := keys.Revoke(h.state, id, actor, now)
	require.NoError(h.t, err)
	h.commit(ev)
}

// replay rebuilds a State from the log alone.
func (h *harness) replay() *keys.State {
	h.t.Helper()
	s := &keys.State{}
	for _, r := range h.log {
		ev, err := keys.Decode(r.typ, r.payload)
		require.NoError(h.t, err)
		require.NoError(h.t, s.Apply(ev))
	}
	s.TakeChanged()
	return s
}

func mustKey(t testing.TB, s *keys.State, id string) keys.Key {
	t.Helper()
	k, ok := s.ByID(id)
	require.True(t, ok, "key %s", id)
	return k
}

// encode stores ev as the domain does: its wire type and its json.Marshal
// encoding (see domain.Encode).
func encode(ev keys.Event) (string, []byte, error) {
	payload, err := json.Marshal(ev)
	return ev.EventType(), payload, err
}

// authenticate is how the Ledger authenticates a plaintext key against a
// State: well formed, known, active at now. Every failure is
// keys.ErrInvalidKey.
func authenticate(s *keys.State, plaintext string, now time.Time) (keys.Key, error) {
	if keys.CheckFormat(plaintext) != nil {
		return keys.Key{}, keys.ErrInvalidKey
	}
	k, ok := s.ByHash(keys.Hash(plaintext))
	if !ok || !k.IsActive(now) {
		return keys.Key{}, keys.ErrInvalidKey
	}
	return k, nil
}
