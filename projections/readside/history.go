package readside

import (
	"context"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
)

// Key lifecycle facts of the credential history.
const (
	FactCreated = "created"
	FactRotated = "rotated"
	FactRevoked = "revoked"
	FactExpired = "expired"
	FactUsed    = "used"
)

// ActorExpiry is the actor of expired facts: nobody acted, time passed.
const ActorExpiry = "system:expiry"

// KeyFact is one row of the credential history.
type KeyFact struct {
	Time  time.Time
	Fact  string
	KeyID string
	Name  string
	Scope string
	Actor string
	// RelatedKeyID is the other key of a rotation: the new key on the old
	// key's "rotated" row, the old key on the new key's "created" row.
	RelatedKeyID string
	// Seq and EventID locate the event; zero for derived expired facts.
	Seq     uint64
	EventID string
}

// KeyHistory returns every key lifecycle fact up to now in time order:
// created, rotated, revoked and used from the log, and expired derived from
// each key's expires_at (when it passed before now and before any
// revocation).
func (ix *Index) KeyHistory(ctx context.Context, now time.Time) ([]KeyFact, error) {
	var facts []KeyFact
	type life struct {
		name, scope string
		expires     time.Time
		revoked     *time.Time
	}
	lives := map[string]*life{}
	order := []string{}
	created := func(r eventstore.Record, c keys.KeyCreated, related string) {
		lives[c.KeyID] = &life{name: c.Name, scope: string(c.Scope), expires: c.ExpiresAt}
		order = append(order, c.KeyID)
		facts = append(facts, KeyFact{Time: c.CreatedAt, Fact: FactCreated, KeyID: c.KeyID, Name: c.Name,
			Scope: string(c.Scope), Actor: r.Actor, RelatedKeyID: related, Seq: r.Seq, EventID: r.ID})
	}
	revoked := func(id string, at time.Time) {
		if l := lives[id]; l != nil && (l.revoked == nil || at.Before(*l.revoked)) {
			l.revoked = &at
		}
	}
	fact := func(r eventstore.Record, kind, id, related string, at time.Time) {
		f := KeyFact{Time: at, Fact: kind, KeyID: id, Actor: r.Actor, RelatedKeyID: related, Seq: r.Seq, EventID: r.ID}
		if l := lives[id]; l != nil {
			f.Name, f.Scope = l.name, l.scope
		}
		facts = append(facts, f)
	}
	err := ix.Changes(ctx, 0, func(r eventstore.Record) error {
		if len(r.Type) < 4 || r.Type[:4] != "key." {
			return nil
		}
		ev, err := domain.Decode(r.Type, r.Payload)
		if err != nil {
			return err
		}
		switch e := ev.(type) {
		case keys.KeyCreated:
			created(r, e, "")
		case keys.KeyRotated:
			fact(r, FactRotated, e.OldKeyID, e.NewKey.KeyID, e.NewKey.CreatedAt)
			revoked(e.OldKeyID, e.OldRevokedAt)
			created(r, e.NewKey, e.OldKeyID)
		case keys.KeyRevoked:
			fact(r, FactRevoked, e.KeyID, "", e.RevokedAt)
			revoked(e.KeyID, e.RevokedAt)
		case keys.KeyUsed:
			fact(r, FactUsed, e.KeyID, "", e.UsedAt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range order {
		l := lives[id]
		if l.expires.After(now) || (l.revoked != nil && !l.revoked.After(l.expires)) {
			continue
		}
		facts = append(facts, KeyFact{Time: l.expires, Fact: FactExpired, KeyID: id, Name: l.name, Scope: l.scope, Actor: ActorExpiry})
	}
	slices.SortStableFunc(facts, func(a, b KeyFact) int { return a.Time.Compare(b.Time) })
	return facts, nil
}
