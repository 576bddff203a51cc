package keys

import (
	"fmt"
	"reflect"
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
		i, ok := s.findID(id)
		require.True(t, ok)
		byHash, ok := s.findHash(s.arena.hash(s.entries.at(i)))
		require.True(t, ok)
		require.Equal(t, i, byHash, "byID and byHash find the same entry")
		return *s.entries.at(i)
	}
	before := entryOf(&s, "key_0")
	frozen := s.FrozenCopy()
	require.Equal(t, before, entryOf(frozen, "key_0"))
	require.Same(t, &s.arena.chunks[0][0], &frozen.arena.chunks[0][0], "a frozen copy shares the arena")
	require.Same(t, s.entries.pages[0], frozen.entries.pages[0], "and the entries")
	require.Equal(t, len(frozen.arena.chunks), cap(frozen.arena.chunks), "appending to the copy's chunk list copies it")

	require.NoError(t, s.Apply(KeyUsed{KeyID: "key_0", UsedAt: t0.Add(time.Minute)}))
	require.NoError(t, s.Apply(KeyRevoked{KeyID: "key_0", RevokedAt: t0.Add(2 * time.Minute)}))
	require.NoError(t, s.Apply(KeyRotated{OldKeyID: "key_1", OldRevokedAt: t0.Add(time.Minute), NewKey: KeyCreated{
		KeyID: "key_3", Name: "k", Scope: ScopeRead, KeyHash: fmt.Sprintf("%x", [32]byte{3}), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		RotatedFrom: "key_1"}}))
	require.Equal(t, before, entryOf(frozen, "key_0"), "the frozen copy's entry is unchanged")
	require.NotSame(t, s.entries.pages[0], frozen.entries.pages[0], "the first write copied the page")
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

// A table shared by share keeps each side's entries its own, across pages
// and appends on both sides, and a clone has the same entries.
func TestTableCopiesOnWrite(t *testing.T) {
	t.Parallel()
	mark := func(n uint32) entry { return entry{idLen: n} }
	var a table
	for i := range uint32(3*pageLen - 5) {
		require.Equal(t, i, a.add(mark(i)))
	}
	b := a.share()
	a.set(1, mark(1000))
	b.set(pageLen+1, mark(2000))
	ia, ib := a.add(mark(3000)), b.add(mark(4000))
	require.Equal(t, ia, ib, "both append at the same index")
	for range 10 {
		b.add(mark(5000)) // b grows a page of its own
	}
	require.Equal(t, uint32(1000), a.at(1).idLen)
	require.Equal(t, uint32(1), b.at(1).idLen)
	require.Equal(t, uint32(pageLen+1), a.at(pageLen+1).idLen)
	require.Equal(t, uint32(2000), b.at(pageLen+1).idLen)
	require.Equal(t, uint32(3000), a.at(ia).idLen)
	require.Equal(t, uint32(4000), b.at(ib).idLen)
	require.NotSame(t, a.pages[0], b.pages[0])
	require.Equal(t, 3*pageLen-4, a.n)
	require.Equal(t, 3*pageLen+6, b.n)
	c := a.clone()
	require.Equal(t, a.n, c.n)
	for i := range uint32(a.n) {
		require.Equal(t, *a.at(i), *c.at(i))
	}
	require.NotSame(t, a.pages[0], c.pages[0])
	require.False(t, hasPointers(reflect.TypeFor[page]()), "a page holds a pointer")
}
