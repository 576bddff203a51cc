package keys

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
	"github.com/custos-dev/custos/domain/internal/wire/wiretest"
)

// Internal test: it fills every field of the unexported entry, so a field
// added to entry but not to the snapshot fails here.
func TestSnapshotKeepsEveryField(t *testing.T) {
	t.Parallel()
	var s State
	for i := range 5 {
		var e entry
		wiretest.Fill(&e, wiretest.Lists{EmptyAt: -1, NilAt: -1})
		e.id = fmt.Sprintf("key_%d_%s", i, e.id)
		e.hash[0] = byte(i)
		if i == 3 {
			e.change.revokedAt = instantOf(e.change.revokedAt.Time().AddDate(-3000, 0, 0))
			e.lastUsedAt, e.change.rotatedTo = instant{}, ""
		}
		s.insert(&e)
	}
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	var got State
	require.NoError(t, got.UnmarshalSnapshot(b))
	require.Equal(t, s.byID, got.byID)
	require.Equal(t, s.byHash, got.byHash)
	for e := range got.byHash.All() {
		byID, _ := got.byID.Get(e.id)
		require.Same(t, byID, e, "byID and byHash share entries, as Apply expects: %x", e.hash)
	}
	again, err := got.MarshalSnapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, again))
	require.Equal(t, len(b), cap(b), "the buffer is sized exactly (entry.snapshotSize)")
}

func TestSnapshotRejects(t *testing.T) {
	t.Parallel()
	var s State
	var e entry
	wiretest.Fill(&e, wiretest.Lists{EmptyAt: -1, NilAt: -1})
	s.insert(&e)
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)

	bad := append([]byte(nil), b...)
	bad[0] = SnapshotVersion + 1
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(bad), wire.ErrVersion)

	// The same key twice.
	w := wire.NewWriter(0)
	w.Uvarint(SnapshotVersion)
	w.Uvarint(2)
	body := b[2:]
	w.Fixed(body)
	w.Fixed(body)
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(w.Bytes()), wire.ErrCorrupt)

	keep := &State{}
	keep.insert(&entry{id: "kept"})
	require.Error(t, keep.UnmarshalSnapshot(b[:len(b)-1]))
	require.Equal(t, 1, keep.Len(), "a failed restore leaves the state unchanged")
}

// A key's stored form stays small: a store may hold millions of keys, and
// each byte here is a megabyte of heap per million.
func TestEntrySize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(entry{}), uintptr(176))
}
