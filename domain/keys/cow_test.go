package keys

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Internal test: it follows entries by pointer to check that Apply copies
// an entry a frozen copy shares exactly once, and keeps byID and byHash on
// the same entry.
func TestFrozenCopySharesEntriesUntilChanged(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s State
	for i := range 3 {
		var h [32]byte
		h[0] = byte(i)
		require.NoError(t, s.Apply(KeyCreated{KeyID: fmt.Sprintf("key_%d", i), Name: "k", Scope: ScopeRead,
			KeyHash: fmt.Sprintf("%x", h), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	entryOf := func(s *State, id string) *entry {
		e, ok := s.byID.Get(id)
		require.True(t, ok)
		byHash, ok := s.byHash.Get(e.hash)
		require.True(t, ok)
		require.Same(t, e, byHash, "byID and byHash hold the same entry")
		return e
	}
	before := entryOf(&s, "key_0")
	frozen := s.FrozenCopy()
	require.Same(t, before, entryOf(frozen, "key_0"), "a frozen copy shares entries")

	require.NoError(t, s.Apply(KeyUsed{KeyID: "key_0", UsedAt: t0.Add(time.Minute)}))
	changed := entryOf(&s, "key_0")
	require.NotSame(t, before, changed, "the first change after a freeze copies the entry")
	require.True(t, before.lastUsedAt.Time().IsZero(), "the frozen copy's entry is unchanged")
	require.Same(t, before, entryOf(frozen, "key_0"))

	require.NoError(t, s.Apply(KeyRevoked{KeyID: "key_0", RevokedAt: t0.Add(2 * time.Minute)}))
	require.Same(t, changed, entryOf(&s, "key_0"), "later changes in the same generation do not copy again")
	require.Same(t, entryOf(frozen, "key_1"), entryOf(&s, "key_1"), "unchanged entries stay shared")

	again := s.FrozenCopy()
	require.NoError(t, s.Apply(KeyUsed{KeyID: "key_0", UsedAt: t0.Add(3 * time.Minute)}))
	require.NotSame(t, changed, entryOf(&s, "key_0"), "a new freeze makes the entry shared again")
	require.Equal(t, t0.Add(time.Minute), entryOf(again, "key_0").lastUsedAt.Time())
	require.True(t, entryOf(frozen, "key_0").lastUsedAt.Time().IsZero())
}
