package keys

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
	"github.com/custos-dev/custos/domain/internal/wire/wiretest"
)

// Internal test: it fills every field of a key's plain form and checks
// that every field of its entry is set, so a field added to entry but not
// to the snapshot fails here.
func TestSnapshotKeepsEveryField(t *testing.T) {
	t.Parallel()
	var s State
	var want []fields
	for i := range 5 {
		var f fields
		wiretest.Fill(&f, wiretest.Lists{EmptyAt: -1, NilAt: -1})
		f.id = fmt.Sprintf("key_%d_%s", i, f.id)
		f.scope = scopes[1+i%(len(scopes)-1)]
		f.hash[0] = byte(i)
		if i == 3 {
			f.revokedAt = f.revokedAt.AddDate(-3000, 0, 0)
			f.lastUsedAt, f.rotatedTo = time.Time{}, ""
		}
		if i == 4 {
			f.rotatedFrom = want[0].id // points at key 0's id in the arena
		}
		e := s.add(&f)
		if i == 4 {
			v := reflect.ValueOf(e)
			for j := range v.NumField() {
				require.False(t, v.Field(j).IsZero(), "entry.%s is not made from fields", v.Type().Field(j).Name)
			}
		}
		want = append(want, f)
	}
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	var got State
	require.NoError(t, got.UnmarshalSnapshot(b))
	require.Equal(t, s.Len(), got.Len())
	for _, f := range want {
		i, ok := got.findID(f.id)
		require.True(t, ok, f.id)
		require.Equal(t, f, got.fields(got.entries.at(i)))
		byHash, ok := got.findHash(f.hash)
		require.True(t, ok, f.id)
		require.Equal(t, i, byHash, "byID and byHash find the same entry")
	}
	again, err := got.MarshalSnapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, again))
	require.Equal(t, len(b), cap(b), "the buffer is sized exactly (entry.snapshotSize)")
}

func TestSnapshotRejects(t *testing.T) {
	t.Parallel()
	var s State
	var f fields
	wiretest.Fill(&f, wiretest.Lists{EmptyAt: -1, NilAt: -1})
	f.scope = ScopeRead
	s.add(&f)
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

	// A scope Apply would not take.
	var odd State
	odd.add(&f)
	e := *odd.entries.at(0)
	e.scope = 0
	odd.entries.set(0, e)
	b2, err := odd.MarshalSnapshot()
	require.NoError(t, err)
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(b2), wire.ErrCorrupt)

	keep := &State{}
	keep.add(&fields{id: "kept", scope: ScopeRead})
	require.Error(t, keep.UnmarshalSnapshot(b[:len(b)-1]))
	require.Equal(t, 1, keep.Len(), "a failed restore leaves the state unchanged")
}

// A key's stored form stays small: a store may hold millions of keys, and
// each byte here is a megabyte of heap per million.
// An entry also holds no pointer, so that the maps of entries are not
// traced by the garbage collector, and fits a map's table (at most 128
// bytes; larger values a map allocates one by one).
func TestEntrySize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(entry{}), uintptr(100))
	require.False(t, hasPointers(reflect.TypeFor[entry]()), "entry holds a pointer")
	for _, typ := range []reflect.Type{reflect.TypeFor[instant](), reflect.TypeFor[str](), reflect.TypeFor[uint64]()} {
		require.False(t, hasPointers(typ), "%s holds a pointer", typ)
	}
}

// hasPointers reports whether a value of type t holds a pointer the
// garbage collector must trace.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}
