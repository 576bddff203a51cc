package decision

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes, including
// when Session gains or loses a field. Version 2 dropped the log positions
// of every decision of a session (Session.Seqs), which made a snapshot grow
// with the decisions instead of the sessions.
const SnapshotVersion = 2

// FrozenCopy returns a copy of s in O(shards), for a snapshot to encode on
// another goroutine while s keeps applying decisions: the two share their
// records, and s copies a shard of its map on the first write to it and a
// record before its first change (each at most once per FrozenCopy). The
// copies share the backing arrays of SourcesAccessed, which is safe
// because Apply only ever appends to them (it never writes an element
// below a slice's length). The copy must only be read: Apply on it panics.
// FrozenCopy changes s's bookkeeping, so call it where no Apply and no read
// of s can run.
func (s *Sessions) FrozenCopy() *Sessions {
	s.gen++
	return &Sessions{byID: s.byID.Clone(), gen: s.gen, frozen: true}
}

// MarshalSnapshot encodes every session of s, sorted by session id, so that
// equal states give equal bytes. Its size grows with the sessions and their
// distinct sources, not with their decisions. It only reads s.
func (s *Sessions) MarshalSnapshot() ([]byte, error) {
	ids := make([]string, 0, s.byID.Len())
	for id := range s.byID.All() {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp.Compare)
	w := wire.NewWriter(16 + 256*len(ids))
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		sess, _ := s.byID.Get(id)
		w.String(sess.SessionID)
		w.String(sess.OwnerRole)
		w.String(sess.OwnerAgentID)
		w.Time(sess.StartedAt)
		w.TimePtr(sess.ExpiresAt)
		w.Int(sess.Allowed)
		w.Int(sess.Denied)
		wire.PutStrings(w, sess.SourcesAccessed)
		w.String(sess.FirstEventID)
		w.String(sess.LastEventID)
		w.Time(sess.FirstEventAt)
		w.Time(sess.LastEventAt)
	}
	return w.Bytes(), nil
}

// UnmarshalSnapshot replaces the contents of s with the sessions encoded in
// b by MarshalSnapshot. It fails, leaving s unchanged, on a version other
// than SnapshotVersion or on bytes that do not decode (including a
// duplicate session id).
func (s *Sessions) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("sessions", SnapshotVersion)
	n := r.Len(r.Uvarint(), 16)
	c := Sessions{gen: s.gen}
	for range n {
		sess := &record{gen: c.gen, Session: Session{
			SessionID:       r.String(),
			OwnerRole:       r.String(),
			OwnerAgentID:    r.String(),
			StartedAt:       r.Time(),
			ExpiresAt:       r.TimePtr(),
			Allowed:         r.Int(),
			Denied:          r.Int(),
			SourcesAccessed: wire.GetStrings[string](r),
		}}
		sess.FirstEventID = r.String()
		sess.LastEventID = r.String()
		sess.FirstEventAt = r.Time()
		sess.LastEventAt = r.Time()
		if r.Err() != nil {
			break
		}
		if _, dup := c.byID.Get(sess.SessionID); dup {
			r.Fail("session %q twice", sess.SessionID)
			break
		}
		c.byID.Set(sess.SessionID, sess)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("decision: restore snapshot: %w", err)
	}
	s.byID = c.byID
	return nil
}
