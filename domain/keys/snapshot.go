package keys

import (
	"fmt"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes.
const SnapshotVersion = 1

// MarshalSnapshot encodes every key of s, sorted by key id, so that equal
// states give equal bytes. It only reads s.
func (s *State) MarshalSnapshot() ([]byte, error) {
	ids := make([]string, 0, s.byID.Len())
	for id := range s.byID.All() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// Size the buffer exactly: at a million keys an estimate's slack is
	// tens of megabytes per snapshot.
	size := wire.UvarintSize(SnapshotVersion) + wire.UvarintSize(uint64(len(ids)))
	for _, id := range ids {
		e, _ := s.byID.Get(id)
		size += e.snapshotSize()
	}
	w := wire.NewWriter(size)
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		e, _ := s.byID.Get(id)
		w.String(e.id)
		w.String(e.name)
		w.String(e.prefix)
		w.String(e.agentID)
		w.String(e.rotatedFrom())
		w.String(e.rotatedTo())
		w.String(string(e.scope))
		w.Fixed(e.hash[:])
		w.Time(e.createdAt.Time())
		w.Time(e.expiresAt.Time())
		w.Time(e.revokedAt())
		w.Time(e.lastUsedAt.Time())
	}
	return w.Bytes(), nil
}

// snapshotSize is the size MarshalSnapshot writes for e; keep the two in
// step (TestSnapshotKeepsEveryField checks it).
func (e *entry) snapshotSize() int {
	n := len(e.hash)
	for _, s := range []string{e.id, e.name, e.prefix, e.agentID, e.rotatedFrom(), e.rotatedTo(), string(e.scope)} {
		n += wire.StringSize(s)
	}
	for _, t := range []time.Time{e.createdAt.Time(), e.expiresAt.Time(), e.revokedAt(), e.lastUsedAt.Time()} {
		n += wire.TimeSize(t)
	}
	return n
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. It fails, leaving s unchanged, on a version other than
// SnapshotVersion or on bytes that do not decode to a consistent state
// (duplicate id or hash).
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("keys", SnapshotVersion)
	n := r.Len(r.Uvarint(), 32)
	c := State{gen: s.gen}
	for range n {
		e := &entry{
			id:      r.String(),
			name:    r.String(),
			prefix:  r.String(),
			agentID: r.String(),
		}
		ch := change{rotatedFrom: r.String(), rotatedTo: r.String()}
		e.scope = Scope(r.String())
		r.Fixed(e.hash[:])
		e.createdAt = instantOf(r.Time())
		e.expiresAt = instantOf(r.Time())
		ch.revokedAt = instantOf(r.Time())
		e.lastUsedAt = instantOf(r.Time())
		if ch != (change{}) {
			e.change = &ch
		}
		if r.Err() != nil {
			break
		}
		if _, dup := c.byID.Get(e.id); dup {
			r.Fail("key %q twice", e.id)
			break
		}
		if _, dup := c.byHash.Get(e.hash); dup {
			r.Fail("key %q: hash of another key", e.id)
			break
		}
		c.insert(e)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("keys: restore snapshot: %w", err)
	}
	s.byID, s.byHash = c.byID, c.byHash
	return nil
}
