package writeside_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestSuperadminRecordsTenantEventsOnBothChains writes a tenant's lifecycle
// on the system chain and on the tenant's own chain of one store on disk,
// checks who may write what, and reopens both Ledgers from their chains.
func TestSuperadminRecordsTenantEventsOnBothChains(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	store, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	open := func(chain string) *writeside.Ledger {
		l, err := writeside.Open(ctx, writeside.Config{Store: store, Chain: chain, Logger: quiet, SnapshotEvery: writeside.NoSnapshots})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	system, acme := open(tenants.SystemChain), open("acme")
	// The superadmin's key lives on the system chain, which checks it at
	// each of its changes; a tenant's chain only records who it was.
	var sa keys.KeyCreated
	_, err = system.Write(ctx, writeside.ActorInit, func(tx *writeside.Tx) ([]domain.Event, error) {
		var err error
		sa, _, err = keys.CreateSuperadmin(tx.State.Keys, keys.CreateCommand{Name: "sa"}, tx.Now, tx.NewID("key"), tx.Entropy)
		return []domain.Event{sa}, err
	})
	require.NoError(t, err)
	superadmin := domain.SuperadminActorPrefix + sa.KeyID
	_, err = system.CreateTenant(ctx, domain.SuperadminActorPrefix+"key_01JAAAAAAAAAAAAAAAAAAAAAAA", tenants.CreateCommand{TenantID: "nobody"})
	require.ErrorIs(t, err, keys.ErrInvalidKey, "the system chain knows no such superadmin key")

	for _, l := range []*writeside.Ledger{system, acme} {
		_, err := l.CreateTenant(ctx, superadmin, tenants.CreateCommand{TenantID: "acme", Name: "Acme"})
		require.NoError(t, err)
		_, err = l.SuspendTenant(ctx, superadmin, "acme", "audit")
		require.NoError(t, err)
	}
	_, err = system.CreateTenant(ctx, superadmin, tenants.CreateCommand{TenantID: "acme2"})
	require.NoError(t, err)
	_, err = system.CreateTenant(ctx, superadmin, tenants.CreateCommand{TenantID: "acme"})
	require.ErrorIs(t, err, tenants.ErrExists)

	// While suspended the tenant's own admin key changes nothing; the
	// superadmin cannot act inside the tenant but to mint admin keys.
	created, _, _, err := acme.CreateKey(ctx, superadmin, keys.CreateCommand{Name: "admin", Scope: string(keys.ScopeAdmin)})
	require.NoError(t, err)
	_, err = acme.ResumeTenant(ctx, created.KeyID, "acme")
	require.ErrorIs(t, err, tenants.ErrTenantSuspended)
	_, err = acme.RegisterAgent(ctx, created.KeyID, agents.RegisterCommand{AgentID: "agent-1", AgentRole: "analyst"})
	require.ErrorIs(t, err, tenants.ErrTenantSuspended)
	_, err = acme.RegisterAgent(ctx, superadmin, agents.RegisterCommand{AgentID: "agent-1", AgentRole: "analyst"})
	require.ErrorIs(t, err, keys.ErrInvalidKey)
	_, _, _, err = acme.CreateKey(ctx, superadmin, keys.CreateCommand{Name: "k", Scope: string(keys.ScopeRead)})
	require.ErrorIs(t, err, keys.ErrInvalidKey)

	_, err = acme.ResumeTenant(ctx, superadmin, "acme")
	require.NoError(t, err)
	// Active again, its admin key works, and still cannot resume or
	// suspend its own tenant.
	_, err = acme.SuspendTenant(ctx, created.KeyID, "acme", "self")
	require.ErrorIs(t, err, keys.ErrInsufficientScope)
	_, err = acme.RegisterAgent(ctx, created.KeyID, agents.RegisterCommand{AgentID: "agent-1", AgentRole: "analyst"})
	require.NoError(t, err)

	wantSystem, wantAcme := system.Tenants(), acme.Tenants()
	require.Equal(t, []string{"acme", "acme2"}, []string{wantSystem[0].TenantID, wantSystem[1].TenantID})
	require.Equal(t, tenants.StatusSuspended, wantSystem[0].Status)
	require.Len(t, wantAcme, 1, "a tenant's chain knows only its own tenant")
	require.Equal(t, tenants.StatusActive, wantAcme[0].Status)

	var actors []string
	require.NoError(t, store.Records(ctx, "acme", 1, 0, func(r eventstore.Record) error {
		if r.Type != keys.TypeKeyCreated && r.Type != agents.TypeAgentRegistered {
			actors = append(actors, r.Type+" by "+r.Actor)
		}
		return nil
	}))
	require.Equal(t, []string{
		tenants.TypeTenantCreated + " by " + superadmin,
		tenants.TypeTenantSuspended + " by " + superadmin,
		tenants.TypeTenantResumed + " by " + superadmin,
	}, actors, "the tenant's auditors see every superadmin action and nothing of acme2")

	require.NoError(t, system.Close())
	require.NoError(t, acme.Close())
	require.Equal(t, wantSystem, open(tenants.SystemChain).Tenants())
	require.Equal(t, wantAcme, open("acme").Tenants())
}
