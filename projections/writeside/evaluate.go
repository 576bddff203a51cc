package writeside

import (
	"context"
	"errors"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
)

// ErrUnboundKey reports an evaluation by a key bound to no agent while
// Config.RequireBoundKeys is set (HTTP 403). Nothing is appended.
var ErrUnboundKey = errors.New("writeside: this server lets only keys bound to an agent evaluate (--require-bound-keys)")

// Evaluate decides req for the calling key against the live state, appends
// the decision.made and waits until it is durable. It returns the decision
// and its record (event id, seq). A decision is never returned without its
// durable record: on a log error the caller must withhold the answer.
func (l *Ledger) Evaluate(ctx context.Context, caller keys.Key, req policy.Request) (decision.Made, eventstore.Record, error) {
	var made decision.Made
	recs, err := l.Write(ctx, caller.KeyID, func(tx *Tx) ([]domain.Event, error) {
		// Write checked that the key is valid at this position; its binding
		// never changes, but read it from the same state all the same.
		key, _ := tx.State.Keys.ByID(caller.KeyID)
		if l.cfg.RequireBoundKeys && key.AgentID == "" {
			return nil, ErrUnboundKey
		}
		made = tx.State.Evaluate(domain.EvaluateInput{
			Request: req, KeyID: key.KeyID, KeyAgentID: key.AgentID, Now: tx.Now,
		})
		return []domain.Event{made}, nil
	})
	if err != nil {
		return decision.Made{}, eventstore.Record{}, err
	}
	return made, recs[0], nil
}

// Session returns a copy of the session with id.
func (l *Ledger) Session(id string) (decision.Session, bool) {
	var out decision.Session
	var ok bool
	l.Read(func(s *domain.State) {
		var sess *decision.Session
		if sess, ok = s.Sessions.Get(id); ok {
			out = *sess
			out.SourcesAccessed = append([]string(nil), sess.SourcesAccessed...)
		}
	})
	return out, ok
}
