package writeside

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/policy"
)

// ActorPolicySync is the actor of policy changes made from policy files.
const ActorPolicySync = "system:policy-sync"

// CreatePolicy decides, appends and applies a policy.created and returns
// the stored policy (id, version 1, times set).
func (l *Ledger) CreatePolicy(ctx context.Context, actor string, p policy.Policy) (policy.Policy, error) {
	var created policy.PolicyCreated
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		created, err = policy.Create(tx.State.Policies, p, tx.Now, tx.NewID("pol"))
		if err != nil {
			return nil, err
		}
		return []domain.Event{created}, nil
	})
	if err != nil {
		return policy.Policy{}, err
	}
	return created.Policy, nil
}

// UpdatePolicy replaces policy id with p (version + 1) and returns it.
func (l *Ledger) UpdatePolicy(ctx context.Context, actor, id string, p policy.Policy) (policy.Policy, error) {
	var updated policy.PolicyUpdated
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		updated, err = policy.Update(tx.State.Policies, id, p, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{updated}, nil
	})
	if err != nil {
		return policy.Policy{}, err
	}
	return updated.Policy, nil
}

// DeletePolicy removes policy id and returns it as it was.
func (l *Ledger) DeletePolicy(ctx context.Context, actor, id string) (policy.Policy, error) {
	var before policy.Policy
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var ok bool
		if before, ok = tx.State.Policies.ByID(id); !ok {
			return nil, fmt.Errorf("%w: %s", policy.ErrNotFound, id)
		}
		deleted, err := policy.Delete(tx.State.Policies, id, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{deleted}, nil
	})
	if err != nil {
		return policy.Policy{}, err
	}
	return before, nil
}

// SyncPolicies makes the stored policies equal desired, appending only the
// differences (policy-as-code). It returns the events appended: none when
// nothing changed.
func (l *Ledger) SyncPolicies(ctx context.Context, desired []policy.Policy) ([]domain.Event, error) {
	var events []domain.Event
	_, err := l.Write(ctx, ActorPolicySync, func(tx *Tx) ([]domain.Event, error) {
		evs, err := policy.Sync(tx.State.Policies, desired, tx.Now, func() string { return tx.NewID("pol") })
		if err != nil {
			return nil, err
		}
		events = make([]domain.Event, len(evs))
		for i, ev := range evs {
			events[i] = ev
		}
		return events, nil
	})
	return events, err
}

// Policy returns the policy with id, or policy.ErrNotFound.
func (l *Ledger) Policy(id string) (policy.Policy, error) {
	var p policy.Policy
	var ok bool
	l.Read(func(s *domain.State) { p, ok = s.Policies.ByID(id) })
	if !ok {
		return policy.Policy{}, fmt.Errorf("%w: %s", policy.ErrNotFound, id)
	}
	return p, nil
}

// Policies returns every current policy, sorted by name.
func (l *Ledger) Policies() []policy.Policy {
	var out []policy.Policy
	l.Read(func(s *domain.State) { out = s.Policies.List() })
	return out
}
