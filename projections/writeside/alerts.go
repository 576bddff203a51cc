package writeside

import (
	"context"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/eventstore"
)

// Actors of alert records no key ordered.
const (
	// ActorAlerts raises alerts (alert.raised).
	ActorAlerts = "system:alerts"
	// ActorAlertSync sets the rules of an alerts file at start.
	ActorAlertSync = "system:alert-sync"
)

// SetAlertRule makes r a rule in force. It appends nothing and returns
// changed false when an equal rule is already set.
func (l *Ledger) SetAlertRule(ctx context.Context, actor string, r alerts.Rule) (changed bool, err error) {
	recs, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		evs, err := alerts.SetRule(tx.State.Alerts, r, tx.Now)
		return asDomain(evs), err
	})
	return len(recs) > 0, err
}

// DeleteAlertRule removes rule id, or returns alerts.ErrNotFound.
func (l *Ledger) DeleteAlertRule(ctx context.Context, actor, id string) error {
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		evs, err := alerts.DeleteRule(tx.State.Alerts, id, tx.Now)
		return asDomain(evs), err
	})
	return err
}

// AlertRules returns the rules in force, sorted by rule_id.
func (l *Ledger) AlertRules() []alerts.Rule {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.state.Alerts.Rules()
}

// AlertRaised reports whether a once-only alert with dedupe key k is on
// the chain.
func (l *Ledger) AlertRaised(k string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.state.Alerts.Raised(k)
	return ok
}

// RaiseAlert records a (AlertID assigned when empty, RaisedAt set to the
// record's time) with actor ActorAlerts and waits until it is durable. For
// a once-only alert whose dedupe key was taken before it appends nothing
// and returns ok false. The check and the append happen under the write
// lock, so two raisers never record the same once-only alert.
func (l *Ledger) RaiseAlert(ctx context.Context, a alerts.Raised) (raised alerts.Raised, rec eventstore.Record, ok bool, err error) {
	recs, err := l.Write(ctx, ActorAlerts, func(tx *Tx) ([]domain.Event, error) {
		if a.AlertID == "" {
			a.AlertID = tx.NewID("alr")
		}
		evs, err := alerts.Raise(tx.State.Alerts, a, tx.Now)
		if len(evs) == 1 {
			raised = evs[0].(alerts.Raised)
		}
		return asDomain(evs), err
	})
	if err != nil || len(recs) == 0 {
		return alerts.Raised{}, eventstore.Record{}, false, err
	}
	return raised, recs[0], true, nil
}

func asDomain(evs []alerts.Event) []domain.Event {
	out := make([]domain.Event, len(evs))
	for i, e := range evs {
		out[i] = e
	}
	return out
}
