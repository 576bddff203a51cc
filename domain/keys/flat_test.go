package keys_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// burst drives h through n random commands from now on: creations,
// rotations, revocations and uses (TestRandomizedReplayEqualsLive and the
// copy-on-write tests share it).
func burst(t *testing.T, h *harness, rng *rand.Rand, now time.Time, n int) time.Time {
	t.Helper()
	ids := make([]string, 0, h.state.Len())
	for _, k := range h.state.List() {
		ids = append(ids, k.KeyID)
	}
	pick := func() string {
		if len(ids) == 0 {
			return keyID(1_000_000)
		}
		return ids[rng.IntN(len(ids))]
	}
	scopes := []string{"admin", "read", "evaluate"}
	for range n {
		now = now.Add(time.Duration(rng.IntN(7200)) * time.Second)
		switch rng.IntN(5) {
		case 0, 1:
			cmd := keys.CreateCommand{Name: fmt.Sprint("k", rng.IntN(100)), Scope: scopes[rng.IntN(3)], ExpiresDays: ptr(1 + rng.IntN(5))}
			if cmd.Scope == "evaluate" && rng.IntN(2) == 0 {
				cmd.AgentID = fmt.Sprint("agent-", rng.IntN(10))
			}
			ev, _, err := keys.Create(h.state, cmd, now, h.newID(), h.rng)
			require.NoError(t, err)
			h.commit(ev)
			ids = append(ids, ev.KeyID)
		case 2:
			ev, _, err := keys.Rotate(h.state, keys.RotateCommand{KeyID: pick(), GraceSeconds: ptr(rng.IntN(20000))}, now, h.newID(), h.rng)
			if err == nil {
				h.commit(ev)
				ids = append(ids, ev.NewKey.KeyID)
			}
		case 3:
			id := pick()
			if ev, err := keys.Revoke(h.state, id, id, now); err == nil {
				h.commit(ev)
			}
		case 4:
			if k, ok := h.state.ByID(pick()); ok && k.IsActive(now) && keys.ShouldRecordUse(k, now) {
				h.commit(keys.KeyUsed{KeyID: k.KeyID, UsedAt: now})
			}
		}
	}
	return now
}

// TestFrozenCopyKeepsItsState checks that a frozen copy keeps showing the
// state it was taken from, key by key and in its snapshot, while another
// goroutine reads it and the live state takes a burst of every kind of
// event (run with -race: the two share their arena and their maps).
func TestFrozenCopyKeepsItsState(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 1))
	h := newHarness(t)
	now := burst(t, h, rng, t0, 200)

	want := h.state.List()
	wantSnap, err := h.state.Clone().MarshalSnapshot()
	require.NoError(t, err)
	hashes := h.state.Hashes()
	frozen := h.state.FrozenCopy()

	check := func(t assert.TestingT) {
		assert.Equal(t, want, frozen.List())
		got, err := frozen.MarshalSnapshot()
		assert.NoError(t, err)
		assert.Equal(t, wantSnap, got)
		for _, k := range want {
			byID, ok := frozen.ByID(k.KeyID)
			assert.True(t, ok, k.KeyID)
			assert.Equal(t, k, byID)
		}
		assert.ElementsMatch(t, hashes, frozen.Hashes())
		for _, hash := range hashes {
			_, ok := frozen.ByHash(hash)
			assert.True(t, ok)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			check(t)
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	burst(t, h, rng, now, 600)
	close(stop)
	wg.Wait()

	check(t)
	require.Greater(t, h.state.Len(), len(want), "the burst created keys")
	require.NotEqual(t, want, h.state.List()[h.state.Len()-len(want):], "and changed old ones")
	require.Equal(t, h.replay().List(), h.state.List(), "the live state went on as if never copied")
}

// TestIDsWithClashingDigests checks that keys whose id digests clash (the
// digest replaced to force it) are each found, by id and by hash, through
// every event, a snapshot, a frozen copy and a clone, and that the state
// reads exactly as one without clashes.
func TestIDsWithClashingDigests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		digest func(string) uint64
	}{
		{"every id the same", func(string) uint64 { return 7 }},
		{"two digests", func(id string) uint64 { return uint64(id[len(id)-1] % 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 2))
			h := newHarness(t)
			h.state = keys.NewStateWithIDDigest(tt.digest)
			end := scenario(h)
			burst(t, h, rng, end, 200)
			plain := h.replay() // FNV-1a digests: no clash
			require.Equal(t, plain.List(), h.state.List())
			snap, err := h.state.MarshalSnapshot()
			require.NoError(t, err)
			plainSnap, err := plain.MarshalSnapshot()
			require.NoError(t, err)
			require.Equal(t, plainSnap, snap, "same bytes")

			restored := keys.NewStateWithIDDigest(tt.digest)
			require.NoError(t, restored.UnmarshalSnapshot(snap))
			hashes := plain.Hashes()
			for name, s := range map[string]*keys.State{"live": h.state, "restored": restored, "frozen": h.state.FrozenCopy(), "clone": h.state.Clone()} {
				require.Equal(t, plain.List(), s.List(), name)
				require.ElementsMatch(t, hashes, s.Hashes(), name)
				for _, k := range plain.List() {
					got, ok := s.ByID(k.KeyID)
					require.True(t, ok, "%s: %s", name, k.KeyID)
					require.Equal(t, k, got, name)
				}
				for _, hash := range hashes {
					want, _ := plain.ByHash(hash)
					got, ok := s.ByHash(hash)
					require.True(t, ok, name)
					require.Equal(t, want, got, name)
				}
				_, ok := s.ByID(keyID(999_999))
				require.False(t, ok, name)
				_, ok = s.ByHash([32]byte{1})
				require.False(t, ok, name)
			}
			err = h.state.Apply(keys.KeyUsed{KeyID: keyID(999_999), UsedAt: end})
			require.ErrorIs(t, err, keys.ErrInconsistent, "an unknown id is unknown, whatever its digest")
		})
	}
}
