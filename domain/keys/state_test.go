package keys_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// scenario drives a harness through every kind of event and returns the
// time it ended at.
func scenario(h *harness) time.Time {
	now := t0
	admin, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, now)
	now = now.Add(time.Minute)
	reader, _ := h.create(keys.CreateCommand{Name: "reader", Scope: "read", ExpiresDays: ptr(30)}, now)
	now = now.Add(time.Minute)
	agent, agentPlain := h.create(keys.CreateCommand{Name: "agent", Scope: "evaluate", AgentID: "agent-1", ExpiresAt: ptr(now.Add(48 * time.Hour))}, now)
	now = now.Add(time.Minute)
	k, err := authenticate(h.state, agentPlain, now)
	require.NoError(h.t, err)
	require.True(h.t, keys.ShouldRecordUse(k, now))
	h.commit(keys.KeyUsed{KeyID: agent.KeyID, UsedAt: now})
	now = now.Add(time.Hour)
	rot, _ := h.rotate(keys.RotateCommand{KeyID: admin.KeyID, GraceSeconds: ptr(600)}, now)
	h.rotate(keys.RotateCommand{KeyID: agent.KeyID}, now)
	now = now.Add(time.Minute)
	h.revoke(admin.KeyID, rot.NewKey.KeyID, now) // leaked during grace
	h.revoke(reader.KeyID, rot.NewKey.KeyID, now)
	return now
}

func TestReplayEqualsLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	end := scenario(h)
	replayed := h.replay()

	require.Equal(t, h.state.List(), replayed.List())
	require.Equal(t, h.state, replayed, "internal state too")
	for _, k := range h.state.List() {
		got, ok := replayed.ByID(k.KeyID)
		require.True(t, ok)
		assert.Equal(t, k, got)
		assert.Equal(t, k.IsActive(end), got.IsActive(end))
	}
}

// TestReplayPointInTime checks that replaying any prefix of the log gives
// the State a snapshot (Clone) taken live at that point had.
func TestReplayPointInTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var snapshots []*keys.State
	h.afterCommit = func() { snapshots = append(snapshots, h.state.Clone()) }
	scenario(h)
	require.Len(t, snapshots, len(h.log))

	s := &keys.State{}
	for i, r := range h.log {
		ev, err := keys.Decode(r.typ, r.payload)
		require.NoError(t, err)
		require.NoError(t, s.Apply(ev))
		s.TakeChanged()
		require.Equal(t, snapshots[i], s, "after event %d (%s)", i, r.typ)
	}
	require.Equal(t, h.state, s)
}

func TestRandomizedReplayEqualsLive(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	h := newHarness(t)
	burst(t, h, rng, t0, 400)
	require.Equal(t, h.state, h.replay())
}

func TestListNewestFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(keys.CreateCommand{Name: "oldest", Scope: "read"}, t0)
	h.create(keys.CreateCommand{Name: "newest", Scope: "read"}, t0.Add(2*time.Hour))
	h.create(keys.CreateCommand{Name: "middle a", Scope: "read"}, t0.Add(time.Hour))
	h.create(keys.CreateCommand{Name: "middle b", Scope: "read"}, t0.Add(time.Hour))

	var names []string
	for _, k := range h.state.List() {
		names = append(names, k.Name)
	}
	assert.Equal(t, []string{"newest", "middle b", "middle a", "oldest"}, names, "ties: higher id first")
	assert.Equal(t, 4, h.state.Len())
	assert.Empty(t, (&keys.State{}).List())
}

func TestLookups(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ev, plain := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)

	byHash, ok := h.state.ByHash(keys.Hash(plain))
	require.True(t, ok)
	byID := mustKey(t, h.state, ev.KeyID)
	assert.Equal(t, byID, byHash)
	assert.Equal(t, keys.Key{
		KeyID:     ev.KeyID,
		Name:      "k",
		Scope:     keys.ScopeRead,
		Prefix:    ev.Prefix,
		CreatedAt: t0,
		ExpiresAt: t0.Add(90 * day),
	}, byID)

	_, ok = h.state.ByID(keyID(999))
	assert.False(t, ok)
	_, ok = h.state.ByHash([32]byte{})
	assert.False(t, ok)
	var zero keys.State
	_, ok = zero.ByID(ev.KeyID)
	assert.False(t, ok)
}

func TestKeyViewIsACopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ev, _ := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)
	h.revoke(ev.KeyID, "", t0.Add(time.Hour))
	h.commit(keys.KeyUsed{KeyID: ev.KeyID, UsedAt: t0.Add(time.Minute)})

	k := mustKey(t, h.state, ev.KeyID)
	*k.RevokedAt = t0.Add(1000 * time.Hour)
	*k.LastUsedAt = t0
	again := mustKey(t, h.state, ev.KeyID)
	assert.Equal(t, t0.Add(time.Hour), *again.RevokedAt)
	assert.Equal(t, t0.Add(time.Minute), *again.LastUsedAt)
}

func TestKeyJSONHasNoSecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ev, plain := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)
	b, err := json.Marshal(mustKey(t, h.state, ev.KeyID))
	require.NoError(t, err)
	assert.NotContains(t, string(b), ev.KeyHash)
	assert.NotContains(t, string(b), plain)
	assert.NotContains(t, strings.ToLower(string(b)), "hash")
}

func TestCloneIsIndependent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, _ := h.create(keys.CreateCommand{Name: "a", Scope: "read"}, t0)
	snap := h.state.Clone()
	require.Equal(t, h.state, snap)

	h.revoke(a.KeyID, "", t0.Add(time.Minute))
	_, plain := h.create(keys.CreateCommand{Name: "b", Scope: "read"}, t0.Add(time.Minute))

	assert.Nil(t, mustKey(t, snap, a.KeyID).RevokedAt)
	assert.Equal(t, 1, snap.Len())
	_, ok := snap.ByHash(keys.Hash(plain))
	assert.False(t, ok)

	require.NoError(t, snap.Apply(keys.KeyUsed{KeyID: a.KeyID, UsedAt: t0}))
	assert.Nil(t, mustKey(t, h.state, a.KeyID).LastUsedAt)

	empty := (&keys.State{}).Clone()
	assert.Zero(t, empty.Len())
}

func TestApplyKeepsEarliestRevocationAndLatestUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, _ := h.create(keys.CreateCommand{Name: "a", Scope: "read"}, t0)
	s := h.state
	id := a.KeyID
	for _, ev := range []keys.Event{
		keys.KeyRevoked{KeyID: id, RevokedAt: t0.Add(2 * time.Hour)},
		keys.KeyRevoked{KeyID: id, RevokedAt: t0.Add(time.Hour)},
		keys.KeyRevoked{KeyID: id, RevokedAt: t0.Add(3 * time.Hour)},
		keys.KeyUsed{KeyID: id, UsedAt: t0.Add(time.Minute)},
		keys.KeyUsed{KeyID: id, UsedAt: t0},
	} {
		require.NoError(t, s.Apply(ev))
	}
	k := mustKey(t, s, id)
	assert.Equal(t, t0.Add(time.Hour), *k.RevokedAt)
	assert.Equal(t, t0.Add(time.Minute), *k.LastUsedAt)
}

func TestApplyNormalizesToUTC(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ev, _ := h.create(keys.CreateCommand{Name: "a", Scope: "read"}, t0)
	cet := time.FixedZone("CET", 3600)
	require.NoError(t, h.state.Apply(keys.KeyUsed{KeyID: ev.KeyID, UsedAt: t0.In(cet)}))
	k := mustKey(t, h.state, ev.KeyID)
	assert.Equal(t, time.UTC, k.LastUsedAt.Location())
}

func TestApplyStructuralErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, _ := h.create(keys.CreateCommand{Name: "a", Scope: "read"}, t0)
	rotated, _ := h.create(keys.CreateCommand{Name: "r", Scope: "read"}, t0)
	h.rotate(keys.RotateCommand{KeyID: rotated.KeyID}, t0)

	fresh := sampleCreated()
	fresh.KeyID = keyID(100)
	with := func(f func(*keys.KeyCreated)) keys.KeyCreated {
		c := fresh
		f(&c)
		return c
	}
	rot := func(old string, f func(*keys.KeyRotated)) keys.KeyRotated {
		n := fresh
		n.RotatedFrom = old
		r := keys.KeyRotated{OldKeyID: old, OldRevokedAt: t0, NewKey: n}
		if f != nil {
			f(&r)
		}
		return r
	}
	tests := []struct {
		name string
		ev   keys.Event
	}{
		{"created without id", with(func(c *keys.KeyCreated) { c.KeyID = "" })},
		{"created duplicate id", with(func(c *keys.KeyCreated) { c.KeyID = a.KeyID })},
		{"created duplicate hash", with(func(c *keys.KeyCreated) { c.KeyHash = a.KeyHash })},
		{"created unknown scope", with(func(c *keys.KeyCreated) { c.Scope = "root" })},
		{"created short hash", with(func(c *keys.KeyCreated) { c.KeyHash = "abcd" })},
		{"created non-hex hash", with(func(c *keys.KeyCreated) { c.KeyHash = strings.Repeat("z", 64) })},
		{"created without created_at", with(func(c *keys.KeyCreated) { c.CreatedAt = time.Time{} })},
		{"created expiring at creation", with(func(c *keys.KeyCreated) { c.ExpiresAt = c.CreatedAt })},
		{"created with rotated_from", with(func(c *keys.KeyCreated) { c.RotatedFrom = a.KeyID })},
		{"rotated unknown old", rot(keyID(999), nil)},
		{"rotated twice", rot(rotated.KeyID, nil)},
		{"rotated mismatched rotated_from", rot(a.KeyID, func(r *keys.KeyRotated) { r.NewKey.RotatedFrom = "" })},
		{"rotated without old_revoked_at", rot(a.KeyID, func(r *keys.KeyRotated) { r.OldRevokedAt = time.Time{} })},
		{"rotated duplicate new id", rot(a.KeyID, func(r *keys.KeyRotated) { r.NewKey.KeyID = a.KeyID })},
		{"rotated to itself", rot(a.KeyID, func(r *keys.KeyRotated) { r.NewKey.KeyID = a.KeyID })},
		{"revoked unknown", keys.KeyRevoked{KeyID: keyID(999), RevokedAt: t0}},
		{"revoked without time", keys.KeyRevoked{KeyID: a.KeyID}},
		{"used unknown", keys.KeyUsed{KeyID: keyID(999), UsedAt: t0}},
		{"used without time", keys.KeyUsed{KeyID: a.KeyID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := h.state.Clone()
			before := s.Clone()
			err := s.Apply(tt.ev)
			require.ErrorIs(t, err, keys.ErrInconsistent)
			require.Equal(t, before, s, "state unchanged on error")
		})
	}

	t.Run("valid fresh key applies", func(t *testing.T) {
		t.Parallel()
		s := h.state.Clone()
		require.NoError(t, s.Apply(fresh))
		require.NoError(t, h.state.Clone().Apply(rot(a.KeyID, func(r *keys.KeyRotated) { r.NewKey.KeyID = keyID(101) })))
	})
}

func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, plain := h.create(keys.CreateCommand{Name: "a", Scope: "read"}, t0)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				_, err := authenticate(h.state, plain, t0)
				assert.NoError(t, err)
				_ = h.state.List()
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// Keys whose hashes share their first 8 bytes (the hash index's short key)
// are each found by their own hash, survive a snapshot and a frozen copy,
// and a third hash with the same first bytes finds nothing.
func TestLookupsByHashSharingAPrefix(t *testing.T) {
	t.Parallel()
	hashOf := func(last byte) [32]byte {
		var h [32]byte
		copy(h[:8], "samefirs")
		h[31] = last
		return h
	}
	var s keys.State
	for i := range 3 {
		h := hashOf(byte(i + 1))
		require.NoError(t, s.Apply(keys.KeyCreated{
			KeyID: keyID(i), Name: fmt.Sprint("k", i), Scope: keys.ScopeRead, Prefix: "cst_x",
			KeyHash: hex.EncodeToString(h[:]), CreatedAt: t0, ExpiresAt: t0.Add(day),
		}))
	}
	require.NoError(t, s.Apply(keys.KeyRevoked{KeyID: keyID(1), RevokedAt: t0.Add(time.Hour)}))
	frozen := s.FrozenCopy()
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	var restored keys.State
	require.NoError(t, restored.UnmarshalSnapshot(b))
	for name, st := range map[string]*keys.State{"live": &s, "frozen": frozen, "restored": &restored} {
		for i := range 3 {
			k, ok := st.ByHash(hashOf(byte(i + 1)))
			require.True(t, ok, "%s: key %d", name, i)
			require.Equal(t, keyID(i), k.KeyID, name)
			require.Equal(t, i == 1, k.RevokedAt != nil, "%s: key %d revoked", name, i)
		}
		_, ok := st.ByHash(hashOf(9))
		require.False(t, ok, name)
		require.Len(t, st.Hashes(), 3, name)
	}
	err = s.Apply(keys.KeyCreated{KeyID: keyID(7), Name: "dup", Scope: keys.ScopeRead,
		KeyHash: hex.EncodeToString(func() []byte { h := hashOf(2); return h[:] }()), CreatedAt: t0, ExpiresAt: t0.Add(day)})
	require.ErrorIs(t, err, keys.ErrInconsistent, "a hash held by a clashing key is still a duplicate")
}
