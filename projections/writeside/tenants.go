package writeside

import (
	"context"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/tenants"
)

// CreateTenant records tenant.created for cmd on this Ledger's chain: on
// the system chain it adds a tenant to the deployment; on the tenant's own
// chain it is the same fact, so the tenant's auditors see it. actor must be
// a system actor or domain.SuperadminActorPrefix + the superadmin's key id
// (a tenant key gets keys.ErrInsufficientScope). It returns the deciders'
// errors (tenants.ErrExists, *tenants.ValidationError) as is.
func (l *Ledger) CreateTenant(ctx context.Context, actor string, cmd tenants.CreateCommand) (tenants.TenantCreated, error) {
	var created tenants.TenantCreated
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		created, err = tenants.Create(tx.State.Tenants, cmd, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{created}, nil
	})
	return created, err
}

// SuspendTenant records tenant.suspended for tenant id, like CreateTenant.
// It returns tenants.ErrNotFound, tenants.ErrSuspended or a
// *tenants.ValidationError for the reason.
func (l *Ledger) SuspendTenant(ctx context.Context, actor, id, reason string) (tenants.TenantSuspended, error) {
	var suspended tenants.TenantSuspended
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		suspended, err = tenants.Suspend(tx.State.Tenants, id, reason, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{suspended}, nil
	})
	return suspended, err
}

// ResumeTenant records tenant.resumed for tenant id, like CreateTenant. It
// returns tenants.ErrNotFound or tenants.ErrActive.
func (l *Ledger) ResumeTenant(ctx context.Context, actor, id string) (tenants.TenantResumed, error) {
	var resumed tenants.TenantResumed
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		resumed, err = tenants.Resume(tx.State.Tenants, id, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{resumed}, nil
	})
	return resumed, err
}

// Tenant returns the tenant with id as this chain knows it, and whether it
// exists. Safe for concurrent use.
func (l *Ledger) Tenant(id string) (tenants.Tenant, bool) {
	var t tenants.Tenant
	var ok bool
	l.Read(func(s *domain.State) { t, ok = s.Tenants.Get(id) })
	return t, ok
}

// Tenants returns every tenant this chain knows, sorted by id. Safe for
// concurrent use.
func (l *Ledger) Tenants() []tenants.Tenant {
	var out []tenants.Tenant
	l.Read(func(s *domain.State) { out = s.Tenants.List() })
	return out
}
