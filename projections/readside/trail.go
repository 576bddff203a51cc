package readside

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
)

// TrailEntry is one decision of a session trail with its log position.
type TrailEntry struct {
	Seq  uint64
	ID   string
	Time time.Time
	Made decision.Made
}

// SessionTrail is a session as its durable decisions tell it.
type SessionTrail struct {
	// Session holds the ownership fields (owner role and agent, started_at,
	// expires_at) of the decision that started the session, and counters
	// over every entry: Allowed and Denied, SourcesAccessed (of ALLOWs, in
	// first-access order) and the first and last entry. Its ownership
	// fields are zero when no durable decision started the session. The
	// log positions of the decisions are the Entries' Seq.
	Session decision.Session
	// Started reports whether a durable decision started the session.
	Started bool
	// Entries are every durable decision that named the session, in log
	// order: also those before it started (an identity or role denial
	// starts no session) and those denied at the session step.
	Entries []TrailEntry
}

// SessionTrail returns every durable decision whose request named session
// id, in log order, read through the session index up to its checkpoint
// and from the log after it (so it sees every durable decision and none
// whose fsync is still running: the counters always agree with the log).
// ok is false when no durable decision named the session.
func (ix *Index) SessionTrail(ctx context.Context, id string) (trail SessionTrail, ok bool, err error) {
	var folded decision.Sessions
	sess := &trail.Session
	_, _, err = ix.Query(ctx, EventFilter{SessionID: id, Type: decision.TypeMade}, 0, 0, func(r eventstore.Record) error {
		made, err := decision.Decode(r.Type, r.Payload)
		if err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		if made.Request.SessionID != id {
			return nil // the index matched another field value (never expected)
		}
		if err := folded.Apply(r.ID, r.Time, made); err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		if made.Allowed() {
			sess.Allowed++
			if !slices.Contains(sess.SourcesAccessed, made.Request.SourceID) {
				sess.SourcesAccessed = append(sess.SourcesAccessed, made.Request.SourceID)
			}
		} else {
			sess.Denied++
		}
		if len(trail.Entries) == 0 {
			sess.FirstEventID, sess.FirstEventAt = r.ID, r.Time.UTC()
		}
		sess.LastEventID, sess.LastEventAt = r.ID, r.Time.UTC()
		trail.Entries = append(trail.Entries, TrailEntry{Seq: r.Seq, ID: r.ID, Time: r.Time, Made: made})
		return nil
	})
	if err != nil {
		return SessionTrail{}, false, fmt.Errorf("projections: session %s trail: %w", id, err)
	}
	if len(trail.Entries) == 0 {
		return SessionTrail{}, false, nil
	}
	sess.SessionID = id
	if owner, started := folded.Get(id); started {
		trail.Started = true
		sess.OwnerRole, sess.OwnerAgentID = owner.OwnerRole, owner.OwnerAgentID
		sess.StartedAt, sess.ExpiresAt = owner.StartedAt, owner.ExpiresAt
	}
	return trail, true, nil
}
