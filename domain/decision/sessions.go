package decision

import (
	"fmt"
	"slices"
	"time"
)

// Session is a read-only view of one session: who owns it, when it ends and
// what happened in it.
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
	// Seqs are the log positions of the session's decisions, in order.
	Seqs []uint64
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
	byID map[string]*Session
}

// Get returns the session with id. The returned pointer is the projection's
// own: read it only while no Apply can run, and do not modify it.
func (s *Sessions) Get(id string) (*Session, bool) {
	sess, ok := s.byID[id]
	return sess, ok
}

// Len is the number of sessions.
func (s *Sessions) Len() int { return len(s.byID) }

// Apply folds a decision into the sessions: it starts the session when m
// says so, and adds the decision (at log position seq, record id and time)
// to its trail.
func (s *Sessions) Apply(seq uint64, id string, at time.Time, m Made) error {
	if s.byID == nil {
		s.byID = map[string]*Session{}
	}
	if st := m.SessionStarted; st != nil {
		if _, exists := s.byID[st.SessionID]; exists {
			return fmt.Errorf("%w: session %q started twice", ErrInconsistent, st.SessionID)
		}
		s.byID[st.SessionID] = &Session{
			SessionID: st.SessionID, OwnerRole: st.OwnerRole, OwnerAgentID: st.OwnerAgentID,
			StartedAt: st.StartedAt.UTC(), ExpiresAt: utcPtr(st.ExpiresAt),
		}
	}
	sess, ok := s.byID[m.Request.SessionID]
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
	if len(sess.Seqs) == 0 {
		sess.FirstEventID, sess.FirstEventAt = id, at.UTC()
	}
	sess.LastEventID, sess.LastEventAt = id, at.UTC()
	sess.Seqs = append(sess.Seqs, seq)
	return nil
}

// Clone returns a deep copy.
func (s *Sessions) Clone() *Sessions {
	c := &Sessions{byID: make(map[string]*Session, len(s.byID))}
	for id, sess := range s.byID {
		cp := *sess
		cp.ExpiresAt = utcPtr(sess.ExpiresAt)
		cp.SourcesAccessed = append([]string(nil), sess.SourcesAccessed...)
		cp.Seqs = append([]uint64(nil), sess.Seqs...)
		c.byID[id] = &cp
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
