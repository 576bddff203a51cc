package keys

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes.
const SnapshotVersion = 1

// MarshalSnapshot encodes every key of s, sorted by key id, so that equal
// states give equal bytes. It only reads s.
func (s *State) MarshalSnapshot() ([]byte, error) {
	// Sort the keys' indexes by id, the ids where they are: 4 bytes a
	// key, no copy.
	order := make([]uint32, s.entries.n)
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		return bytes.Compare(s.arena.bytes(s.entries.at(a).id()), s.arena.bytes(s.entries.at(b).id()))
	})
	// Size the buffer exactly: at a million keys an estimate's slack is
	// tens of megabytes per snapshot.
	size := wire.UvarintSize(SnapshotVersion) + wire.UvarintSize(uint64(len(order)))
	for _, i := range order {
		size += s.entries.at(i).snapshotSize()
	}
	w := wire.NewWriter(size)
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(order)))
	for _, i := range order {
		e := s.entries.at(i)
		h := s.arena.hash(e)
		// Raw writes a length and bytes, as String does.
		for _, x := range []str{e.id(), e.name(), e.prefix(), e.agentID(), e.rotatedFrom, e.rotatedTo} {
			w.Raw(s.arena.bytes(x))
		}
		w.String(string(e.scope.Scope()))
		w.Fixed(h[:])
		w.Time(e.createdAt.Time())
		w.Time(e.expiresAt.Time())
		w.Time(e.revoked())
		w.Time(e.lastUsedAt.Time())
	}
	return w.Bytes(), nil
}

// snapshotSize is the size MarshalSnapshot writes for e; keep the two in
// step (TestSnapshotKeepsEveryField checks it).
func (e *entry) snapshotSize() int {
	n := hashLen + wire.StringSize(string(e.scope.Scope()))
	for _, l := range [...]uint32{e.idLen, e.nameLen, e.prefixLen, e.agentLen, e.rotatedFrom.n, e.rotatedTo.n} {
		n += wire.UvarintSize(uint64(l)) + int(l)
	}
	for _, t := range [...]instant{e.createdAt, e.expiresAt, e.revokedAt, e.lastUsedAt} {
		n += wire.TimeSize(t.Time())
	}
	return n
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. It fails, leaving s unchanged, on a version other than
// SnapshotVersion or on bytes that do not decode to a consistent state
// (duplicate id or hash, unknown scope).
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("keys", SnapshotVersion)
	n := r.Len(r.Uvarint(), 32)
	c := State{digest: s.digest}
	for range n {
		f := fields{
			id:          r.String(),
			name:        r.String(),
			prefix:      r.String(),
			agentID:     r.String(),
			rotatedFrom: r.String(),
			rotatedTo:   r.String(),
			scope:       Scope(r.String()),
		}
		r.Fixed(f.hash[:])
		f.createdAt = r.Time()
		f.expiresAt = r.Time()
		f.revokedAt = r.Time()
		f.lastUsedAt = r.Time()
		if r.Err() != nil {
			break
		}
		if _, dup := c.findID(f.id); dup {
			r.Fail("key %q twice", f.id)
			break
		}
		if _, dup := c.findHash(f.hash); dup {
			r.Fail("key %q: hash of another key", f.id)
			break
		}
		if !f.scope.Known() {
			r.Fail("key %q: unknown scope %q", f.id, f.scope)
			break
		}
		c.add(&f)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("keys: restore snapshot: %w", err)
	}
	s.entries, s.byID, s.byHash, s.arena = c.entries, c.byID, c.byHash, c.arena
	return nil
}
