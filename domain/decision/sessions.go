package decision

import (
	"fmt"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// Session is a read-only view of one session: who owns it, when it ends and
// what happened in it. Its size is bounded by its distinct sources, not by
// its decisions, so that the live state stays O(sessions) however long a
// session lives; the log positions of a session's decisions are the audit
// index's (readside.Index.SessionTrail).
type Session struct {
	SessionID    string
	OwnerRole    string
	OwnerAgentID string
	StartedAt    time.Time
	// ExpiresAt is nil when the owner policy had no session_ttl_minutes.
	ExpiresAt *time.Time
	// Allowed and Denied count the decisions made in the session.
	Allowed, Denied int
	// SourcesAccessed lists the sources of ALLOWed requests, in first-access
	// order.
	SourcesAccessed []string
	// FirstEventID, LastEventID and the times are the first and last
	// decisions.
	FirstEventID, LastEventID string
	FirstEventAt, LastEventAt time.Time
}

// Expired reports whether the session has ended at now.
func (s *Session) Expired(now time.Time) bool {
	return s.ExpiresAt != nil && !now.Before(*s.ExpiresAt)
}

// Age is how long the session has existed at now; never negative.
func (s *Session) Age(now time.Time) time.Duration {
	if d := now.Sub(s.StartedAt); d > 0 {
		return d
	}
	return 0
}

// Sessions is the session projection. The zero value is empty and ready.
type Sessions struct {
	// byID is copy-on-write, so that FrozenCopy costs O(shards); a record
	// it shares with a frozen copy is never changed in place (see
	// mutable).
	byID cow.Map[string, *record, cow.String]
	// gen is the generation of s: it grows at every FrozenCopy, and a
	// record whose gen is below it may be shared with a frozen copy.
	gen uint64
	// frozen is set on a FrozenCopy, which Apply refuses: its records
	// share the backing arrays of SourcesAccessed with the live state's.
	frozen bool
}

// record is the stored form of a session.
type record struct {
	Session
	gen uint64 // Sessions.gen when the record was made or copied
}

// Get returns the session with id. The returned pointer is the projection's
// own: read it only while no Apply can run, and do not modify it.
func (s *Sessions) Get(id string) (*Session, bool) {
	r, ok := s.byID.Get(id)
	if !ok {
		return nil, false
	}
	return &r.Session, true
}

// Len is the number of sessions.
func (s *Sessions) Len() int { return s.byID.Len() }

// mutable returns the record of session id for Apply to change. A record
// that a frozen copy may share (from an older generation) is copied first,
// so each record is copied at most once per FrozenCopy and a frozen copy
// never sees a change. The copy shares the backing array of
// SourcesAccessed: Apply only appends to it, beyond the length the frozen
// copy reads.
func (s *Sessions) mutable(id string) (*Session, bool) {
	r, ok := s.byID.Get(id)
	if !ok {
		return nil, false
	}
	if r.gen != s.gen {
		cp := *r
		cp.gen = s.gen
		r = &cp
		s.byID.Set(id, r)
	}
	return &r.Session, true
}

// Apply folds a decision into the sessions: it starts the session when m
// says so, and counts the decision (record id and time) in it.
func (s *Sessions) Apply(id string, at time.Time, m Made) error {
	if s.frozen {
		panic("decision: Apply on a frozen copy of the sessions")
	}
	if st := m.SessionStarted; st != nil {
		if _, exists := s.byID.Get(st.SessionID); exists {
			return fmt.Errorf("%w: session %q started twice", ErrInconsistent, st.SessionID)
		}
		s.byID.Set(st.SessionID, &record{gen: s.gen, Session: Session{
			SessionID: st.SessionID, OwnerRole: st.OwnerRole, OwnerAgentID: st.OwnerAgentID,
			StartedAt: st.StartedAt.UTC(), ExpiresAt: utcPtr(st.ExpiresAt),
		}})
	}
	sess, ok := s.mutable(m.Request.SessionID)
	if !ok {
		// A decision made before the session step (identity, role lock)
		// does not start a session and belongs to none.
		return nil
	}
	if m.Allowed() {
		sess.Allowed++
		if !slices.Contains(sess.SourcesAccessed, m.Request.SourceID) {
			sess.SourcesAccessed = append(sess.SourcesAccessed, m.Request.SourceID)
		}
	} else {
		sess.Denied++
	}
	if sess.Allowed+sess.Denied == 1 {
		sess.FirstEventID, sess.FirstEventAt = id, at.UTC()
	}
	sess.LastEventID, sess.LastEventAt = id, at.UTC()
	return nil
}

// Clone returns a deep copy, which Apply may change independently of s.
func (s *Sessions) Clone() *Sessions {
	c := &Sessions{gen: s.gen}
	for id, r := range s.byID.All() {
		cp := *r
		cp.ExpiresAt = utcPtr(r.ExpiresAt)
		cp.SourcesAccessed = append([]string(nil), r.SourcesAccessed...)
		c.byID.Set(id, &cp)
	}
	return c
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
