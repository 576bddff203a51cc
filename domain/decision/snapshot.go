package decision

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes, including
// when Session gains a field.
const SnapshotVersion = 1

// FrozenCopy returns a copy of s that a snapshot can encode on another
// goroutine while s keeps applying decisions. It is cheap: it copies each
// Session but shares the backing arrays of SourcesAccessed and Seqs, which
// is safe because Apply only ever appends to them (it never writes an
// element below a slice's length) and the copy's slices are capped at their
// length. The copy must only be read. Call it where no Apply can run.
func (s *Sessions) FrozenCopy() *Sessions {
	c := &Sessions{byID: make(map[string]*Session, len(s.byID))}
	slab := make([]Session, 0, len(s.byID)) // one allocation for all
	for id, sess := range s.byID {
		slab = append(slab, *sess)
		cp := &slab[len(slab)-1]
		cp.SourcesAccessed = slices.Clip(sess.SourcesAccessed)
		cp.Seqs = slices.Clip(sess.Seqs)
		c.byID[id] = cp
	}
	return c
}

// MarshalSnapshot encodes every session of s, sorted by session id, so that
// equal states give equal bytes. Seqs are written as differences from the
// previous one, which keeps the bulk of a large snapshot to one or two
// bytes per decision. It only reads s.
func (s *Sessions) MarshalSnapshot() ([]byte, error) {
	ids := make([]string, 0, len(s.byID))
	seqs := 0
	for id, sess := range s.byID {
		ids = append(ids, id)
		seqs += len(sess.Seqs)
	}
	slices.SortFunc(ids, cmp.Compare)
	w := wire.NewWriter(16 + 256*len(ids) + 3*seqs)
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		sess := s.byID[id]
		w.String(sess.SessionID)
		w.String(sess.OwnerRole)
		w.String(sess.OwnerAgentID)
		w.Time(sess.StartedAt)
		w.TimePtr(sess.ExpiresAt)
		w.Int(sess.Allowed)
		w.Int(sess.Denied)
		wire.PutStrings(w, sess.SourcesAccessed)
		w.Count(len(sess.Seqs), sess.Seqs == nil)
		prev := uint64(0)
		for _, seq := range sess.Seqs {
			w.Varint(int64(seq - prev))
			prev = seq
		}
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
	var byID map[string]*Session
	if n > 0 {
		byID = make(map[string]*Session, n)
	}
	for range n {
		sess := &Session{
			SessionID:       r.String(),
			OwnerRole:       r.String(),
			OwnerAgentID:    r.String(),
			StartedAt:       r.Time(),
			ExpiresAt:       r.TimePtr(),
			Allowed:         r.Int(),
			Denied:          r.Int(),
			SourcesAccessed: wire.GetStrings[string](r),
		}
		if m, isNil := r.Count(1); !isNil {
			sess.Seqs = make([]uint64, m)
			prev := uint64(0)
			for i := range sess.Seqs {
				prev += uint64(r.Varint())
				sess.Seqs[i] = prev
			}
		}
		sess.FirstEventID = r.String()
		sess.LastEventID = r.String()
		sess.FirstEventAt = r.Time()
		sess.LastEventAt = r.Time()
		if r.Err() != nil {
			break
		}
		if _, dup := byID[sess.SessionID]; dup {
			r.Fail("session %q twice", sess.SessionID)
			break
		}
		byID[sess.SessionID] = sess
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("decision: restore snapshot: %w", err)
	}
	s.byID = byID
	return nil
}
