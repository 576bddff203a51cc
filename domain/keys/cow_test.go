package keys

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Internal test: it looks at the maps and the arena to check that a frozen
// copy shares them with its State, that changes to the State after the
// copy do not show in it, and that byID and byHash agree.
func TestFrozenCopySharesUntilChanged(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s State
	for i := range 3 {
		var h [32]byte
		h[0] = byte(i)
		require.NoError(t, s.Apply(KeyCreated{KeyID: fmt.Sprintf("key_%d", i), Name: "k", Scope: ScopeRead,
			KeyHash: fmt.Sprintf("%x", h), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	entryOf := func(s *State, id string) entry {
		e, ok := s.byID.get(s, id)
		require.True(t, ok)
		byHash, ok := s.byHash.get(s, s.arena.hash(&e))
		require.True(t, ok)
		require.Equal(t, e, byHash, "byID and byHash find the same entry")
		return e
	}
	before := entryOf(&s, "key_0")
	frozen := s.FrozenCopy()
	require.Equal(t, before, entryOf(frozen, "key_0"))
	require.Same(t, &s.arena.chunks[0][0], &frozen.arena.chunks[0][0], "a frozen copy shares the arena")
	require.Equal(t, len(frozen.arena.chunks), cap(frozen.arena.chunks), "appending to the copy's chunk list copies it")

	require.NoError(t, s.Apply(KeyUsed{KeyID: "key_0", UsedAt: t0.Add(time.Minute)}))
	require.NoError(t, s.Apply(KeyRevoked{KeyID: "key_0", RevokedAt: t0.Add(2 * time.Minute)}))
	require.NoError(t, s.Apply(KeyRotated{OldKeyID: "key_1", OldRevokedAt: t0.Add(time.Minute), NewKey: KeyCreated{
		KeyID: "key_3", Name: "k", Scope: ScopeRead, KeyHash: fmt.Sprintf("%x", [32]byte{3}), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		RotatedFrom: "key_1"}}))
	require.Equal(t, before, entryOf(frozen, "key_0"), "the frozen copy's entry is unchanged")
	require.Equal(t, t0.Add(time.Minute), entryOf(&s, "key_0").lastUsedAt.Time())
	require.Equal(t, entryOf(frozen, "key_2"), entryOf(&s, "key_2"), "unchanged entries stay equal")
	require.Zero(t, entryOf(frozen, "key_1").rotatedTo)
	rotated := entryOf(&s, "key_1")
	successor := entryOf(&s, "key_3")
	require.Equal(t, rotated.rotatedTo, successor.id(), "a rotation points at the new key's id")
	require.Equal(t, successor.rotatedFrom, rotated.id(), "and back")
	_, ok := frozen.ByID("key_3")
	require.False(t, ok)
	require.Equal(t, 3, frozen.Len())

	again := s.FrozenCopy()
	require.NoError(t, s.Apply(KeyUsed{KeyID: "key_0", UsedAt: t0.Add(3 * time.Minute)}))
	require.Equal(t, t0.Add(time.Minute), entryOf(again, "key_0").lastUsedAt.Time())
	require.True(t, entryOf(frozen, "key_0").lastUsedAt.Time().IsZero())
}

// An arena that shares its last chunk never writes to it, and an arena's
// chunks grow from chunkMin to chunkMax, with a chunk of its own for a
// record larger than that.
func TestArenaAppendsOnly(t *testing.T) {
	t.Parallel()
	var a arena
	x := a.intern("abc")
	shared := a.share()
	y := shared.intern("def")
	z := a.intern("ghi")
	require.Equal(t, "abc", a.string(x))
	require.Equal(t, "abc", shared.string(x))
	require.Equal(t, "def", shared.string(y))
	require.Equal(t, "ghi", a.string(z))
	require.Equal(t, x.chunk, z.chunk, "the original goes on in its chunk")
	require.NotEqual(t, x.chunk, y.chunk, "the sharer starts a chunk of its own")
	require.Len(t, a.chunks, 1)

	var sizes []int
	var b arena
	for range 50_000 {
		b.intern(string(make([]byte, 100)))
	}
	for _, c := range b.chunks {
		sizes = append(sizes, len(c))
	}
	require.Equal(t, []int{chunkMin, 1024, 2048, 4096}, sizes[:4])
	require.Equal(t, chunkMax, sizes[len(sizes)-1])
	big := b.intern(string(make([]byte, chunkMax+1)))
	require.Len(t, b.string(big), chunkMax+1)
	require.Equal(t, "", b.string(b.intern("")))
}
