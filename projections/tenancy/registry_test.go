package tenancy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/projections/replay"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
)

var quiet = slog.New(slog.DiscardHandler)

// deployment is a store on disk and the Registry over it.
type deployment struct {
	t     *testing.T
	dir   string
	store *eventstore.Store
	reg   *tenancy.Registry
}

func newDeployment(t *testing.T) *deployment {
	d := &deployment{t: t, dir: t.TempDir()}
	d.open(true)
	t.Cleanup(d.close)
	return d
}

func (d *deployment) open(create bool) {
	d.t.Helper()
	store, err := eventstore.Open(eventstore.Options{Dir: d.dir, CreateIfMissing: create, Logger: quiet})
	require.NoError(d.t, err)
	reg, err := tenancy.Open(context.Background(), tenancy.Config{Store: store, Logger: quiet,
		Ledger: writeside.Config{SnapshotEvery: writeside.NoSnapshots}})
	if err != nil {
		_ = store.Close()
		require.NoError(d.t, err)
	}
	d.store, d.reg = store, reg
}

func (d *deployment) close() {
	if d.reg == nil {
		return
	}
	require.NoError(d.t, d.reg.Close())
	require.NoError(d.t, d.store.Close())
	d.reg, d.store = nil, nil
}

func (d *deployment) reopen() {
	d.t.Helper()
	d.close()
	d.open(false)
}

// superadmin mints a superadmin key and returns its principal.
func (d *deployment) superadmin() (tenancy.Principal, string) {
	d.t.Helper()
	key, _, err := d.reg.CreateSuperadminKey(context.Background(), writeside.ActorInit, "sa")
	require.NoError(d.t, err)
	p, err := d.reg.Authenticate(key)
	require.NoError(d.t, err)
	require.True(d.t, p.Superadmin())
	return p, key
}

// TestKeysAuthenticateOnlyInTheirOwnTenant creates tenants whose ids are
// prefixes of one another and checks that each key reaches its own tenant
// only, across a restart.
func TestKeysAuthenticateOnlyInTheirOwnTenant(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	created, err := d.reg.EnsureDefault(ctx)
	require.NoError(t, err)
	require.True(t, created)
	sa, saKey := d.superadmin()

	keysOf := map[string]string{}
	for _, id := range []string{"acme", "acme2", "acm"} {
		info, key, rec, err := d.reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: id}, "first-admin")
		require.NoError(t, err)
		require.Equal(t, id, info.TenantID)
		require.Equal(t, keys.ScopeAdmin, rec.Scope)
		keysOf[id] = key
	}
	_, _, _, err = d.reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: "acme"}, "")
	require.ErrorIs(t, err, tenants.ErrExists)

	check := func() {
		t.Helper()
		for id, key := range keysOf {
			p, err := d.reg.Authenticate(key)
			require.NoError(t, err)
			require.False(t, p.Superadmin())
			require.Equal(t, id, p.Tenant.ID)
			for other := range keysOf {
				if other != id {
					o, ok := d.reg.Tenant(other)
					require.True(t, ok)
					_, kerr := o.Ledger.Key(p.Key.KeyID)
					require.ErrorIs(t, kerr, keys.ErrNotFound, "%s's key is unknown in %s", id, other)
				}
			}
		}
		p, err := d.reg.Authenticate(saKey)
		require.NoError(t, err)
		require.True(t, p.Superadmin())
		_, err = d.reg.Authenticate("cst_" + string(bytes.Repeat([]byte("A"), 49)))
		require.ErrorIs(t, err, keys.ErrInvalidKey)
	}
	check()
	d.reopen()
	check()
	require.Equal(t, []string{"acm", "acme", "acme2", "default", tenants.SystemChain}, d.reg.Chains())

	// Keys whose hashes start like another chain's key's are still routed
	// to their own tenant (the index asks each chain).
	for _, key := range keysOf {
		require.True(t, d.reg.ShareShortHash(key))
	}
	require.True(t, d.reg.ShareShortHash(saKey))
	check()
}

// TestSuspendedTenantKeysAreRefused suspends a tenant: its keys are refused
// (on Authenticate and at the Ledger), the other tenants' are not, and the
// status survives a restart; resume restores them.
func TestSuspendedTenantKeysAreRefused(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	sa, _ := d.superadmin()
	_, aKey, _, err := d.reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: "a"}, "")
	require.NoError(t, err)
	_, bKey, _, err := d.reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: "b"}, "")
	require.NoError(t, err)

	info, err := d.reg.SuspendTenant(ctx, sa, "a", "unpaid")
	require.NoError(t, err)
	require.Equal(t, tenants.StatusSuspended, info.Status)
	_, err = d.reg.SuspendTenant(ctx, sa, "a", "again")
	require.ErrorIs(t, err, tenants.ErrSuspended)

	p, err := d.reg.Authenticate(aKey)
	require.ErrorIs(t, err, tenants.ErrTenantSuspended)
	// The Ledger refuses too, at the change's position, whoever asks it.
	_, err = p.Tenant.Ledger.RegisterAgent(ctx, p.Key.KeyID, agents.RegisterCommand{AgentID: "x", AgentRole: "r"})
	require.ErrorIs(t, err, tenants.ErrTenantSuspended)
	_, err = d.reg.Authenticate(bKey)
	require.NoError(t, err)

	d.reopen()
	_, err = d.reg.Authenticate(aKey)
	require.ErrorIs(t, err, tenants.ErrTenantSuspended)
	_, err = d.reg.ResumeTenant(ctx, sa, "a")
	require.NoError(t, err)
	_, err = d.reg.Authenticate(aKey)
	require.NoError(t, err)
	_, err = d.reg.ResumeTenant(ctx, sa, "nope")
	require.ErrorIs(t, err, tenants.ErrNotFound)

	// Both chains record every superadmin action, with the same actor.
	for _, chain := range []string{tenants.SystemChain, "a"} {
		var actions []string
		require.NoError(t, d.store.Records(ctx, chain, 1, 0, func(r eventstore.Record) error {
			if r.Type == tenants.TypeTenantSuspended || r.Type == tenants.TypeTenantResumed {
				actions = append(actions, r.Type+" by "+r.Actor)
			}
			return nil
		}))
		require.Equal(t, []string{tenants.TypeTenantSuspended + " by " + sa.Actor(), tenants.TypeTenantResumed + " by " + sa.Actor()}, actions, chain)
	}
}

// TestOpenCatchesUpATenantChainACrashLeftBehind records a tenant on the
// system chain alone, as a crash between the two appends would leave it;
// the next Open records it on the tenant's own chain before serving.
func TestOpenCatchesUpATenantChainACrashLeftBehind(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	sa, _ := d.superadmin()
	_, err := d.reg.System().CreateTenant(ctx, sa.Actor(), tenants.CreateCommand{TenantID: "late"})
	require.NoError(t, err)
	_, err = d.reg.System().SuspendTenant(ctx, sa.Actor(), "late", "crash drill")
	require.NoError(t, err)
	d.reopen()
	tn, ok := d.reg.Tenant("late")
	require.True(t, ok)
	require.True(t, tn.Suspended())
	var got []string
	require.NoError(t, d.store.Records(ctx, "late", 1, 0, func(r eventstore.Record) error {
		got = append(got, r.Type+" by "+r.Actor)
		return nil
	}))
	require.Equal(t, []string{tenants.TypeTenantCreated + " by " + tenancy.ActorRepair, tenants.TypeTenantSuspended + " by " + tenancy.ActorRepair}, got)
	d.reopen()
	n := 0
	require.NoError(t, d.store.Records(ctx, "late", 1, 0, func(eventstore.Record) error { n++; return nil }))
	require.Equal(t, 2, n, "a second Open appends nothing")
}

// TestUpgradeKeepsTheOneChainAsTenantDefault opens a store that holds chain
// default alone, as a release before tenants wrote it: it becomes tenant
// default with every key, agent, policy and decision, and its keys work.
func TestUpgradeKeepsTheOneChainAsTenantDefault(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true, Logger: quiet})
	require.NoError(t, err)
	l, err := writeside.Open(ctx, writeside.Config{Store: store, Logger: quiet})
	require.NoError(t, err)
	admin, adminKey, _, err := l.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "admin", Scope: "admin"})
	require.NoError(t, err)
	_, err = l.RegisterAgent(ctx, admin.KeyID, agents.RegisterCommand{AgentID: "a-1", AgentRole: "r"})
	require.NoError(t, err)
	_, err = l.CreatePolicy(ctx, admin.KeyID, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}})
	require.NoError(t, err)
	ev, _, _, err := l.CreateKey(ctx, admin.KeyID, keys.CreateCommand{Name: "ev", Scope: "evaluate"})
	require.NoError(t, err)
	evKey, err := l.Key(ev.KeyID)
	require.NoError(t, err)
	_, _, err = l.Evaluate(ctx, evKey, policy.Request{AgentRole: "r", AgentID: "a-1", SourceID: "crm", SessionID: "s-1"})
	require.NoError(t, err)
	var want []byte
	l.Read(func(s *domain.State) { want, err = s.MarshalSnapshot() })
	require.NoError(t, err)
	head, err := store.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, store.Close())

	d := &deployment{t: t, dir: dir}
	d.open(false)
	t.Cleanup(d.close)
	require.Empty(t, d.reg.Tenants(), "a folder from before tenants lists none until upgraded")
	created, err := d.reg.EnsureDefault(ctx)
	require.NoError(t, err)
	require.True(t, created)
	created, err = d.reg.EnsureDefault(ctx)
	require.NoError(t, err)
	require.False(t, created)

	p, err := d.reg.Authenticate(adminKey)
	require.NoError(t, err)
	require.Equal(t, tenants.DefaultID, p.Tenant.ID)
	// Everything that was there is there, at the same positions; the
	// upgrade appended the tenant's record after them.
	upto := domain.NewState()
	require.NoError(t, d.store.Records(ctx, eventstore.DefaultChain, 1, head.Seq, func(r eventstore.Record) error {
		return replay.Apply(upto, r)
	}))
	got, err := upto.MarshalSnapshot()
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = p.Tenant.Ledger.Agent("a-1")
	require.NoError(t, err)
	require.Len(t, p.Tenant.Ledger.Policies(), 1)
	last, err := d.store.Get(ctx, eventstore.DefaultChain, head.Seq+1)
	require.NoError(t, err)
	require.Equal(t, tenants.TypeTenantCreated, last.Type)
	require.Equal(t, tenancy.ActorUpgrade, last.Actor)
}

// TestEachTenantRebuildsFromItsOwnChain runs random operations over a few
// tenants (keys, agents, policies, evaluations, suspensions, restarts) and
// checks that each tenant's live state equals the state folded from its
// own chain alone. Replay a failure with -args -seed=N (see
// eventstoretest.Seed).
func TestEachTenantRebuildsFromItsOwnChain(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 0))
	d := newDeployment(t)
	sa, _ := d.superadmin()
	ids := []string{"t1", "t11", "t2"}
	admins := map[string]string{} // tenant -> admin key id
	evaluators := map[string][]keys.Key{}
	for _, id := range ids {
		_, key, _, err := d.reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: id}, "")
		require.NoError(t, err)
		p, err := d.reg.Authenticate(key)
		require.NoError(t, err)
		admins[id] = p.Key.KeyID
	}
	// The same names in every tenant, so that a leak would collide.
	for step := range 400 {
		id := ids[rng.IntN(len(ids))]
		tn, _ := d.reg.Tenant(id)
		l, admin := tn.Ledger, admins[id]
		var err error
		switch op := rng.IntN(10); {
		case op == 0:
			_, _, _, err = l.CreateKey(ctx, admin, keys.CreateCommand{Name: "k", Scope: []string{"read", "evaluate", "admin"}[rng.IntN(3)]})
		case op == 1:
			var c keys.KeyCreated
			c, _, _, err = l.CreateKey(ctx, admin, keys.CreateCommand{Name: "ev", Scope: "evaluate"})
			if err == nil {
				k, _ := l.Key(c.KeyID)
				evaluators[id] = append(evaluators[id], k)
			}
		case op == 2:
			_, err = l.RegisterAgent(ctx, admin, agents.RegisterCommand{AgentID: fmt.Sprintf("agent-%d", rng.IntN(5)), AgentRole: "r"})
		case op == 3:
			_, err = l.CreatePolicy(ctx, admin, policy.Policy{Name: fmt.Sprintf("p%d", rng.IntN(5)), AgentRole: "r", AllowedSources: []string{"crm"}})
		case op == 4 && tn.Suspended():
			_, err = d.reg.ResumeTenant(ctx, sa, id)
		case op == 4 && rng.IntN(3) == 0:
			_, err = d.reg.SuspendTenant(ctx, sa, id, "drill")
		case op == 5 && rng.IntN(10) == 0:
			d.reopen()
		default:
			if evs := evaluators[id]; len(evs) > 0 {
				_, _, err = l.Evaluate(ctx, evs[rng.IntN(len(evs))], policy.Request{AgentRole: "r", AgentID: fmt.Sprintf("agent-%d", rng.IntN(5)),
					SourceID: "crm", SessionID: fmt.Sprintf("s-%d", rng.IntN(3))})
			}
		}
		if err != nil && !isRefusal(err) {
			require.NoError(t, err, "step %d on %s", step, id)
		}
	}
	for _, id := range ids {
		head, err := d.store.Head(id)
		require.NoError(t, err)
		require.Greater(t, head.Seq, uint64(40), "tenant %s saw too little to test", id)
	}
	for _, id := range ids {
		tn, _ := d.reg.Tenant(id)
		var live []byte
		var err error
		tn.Ledger.Read(func(s *domain.State) { live, err = s.MarshalSnapshot() })
		require.NoError(t, err)
		rebuilt := domain.NewState()
		_, err = replay.Fold(ctx, d.store, id, rebuilt, eventstore.Head{})
		require.NoError(t, err)
		own, err := rebuilt.MarshalSnapshot()
		require.NoError(t, err)
		require.Equal(t, live, own, "tenant %s: live state and its own chain differ", id)
		require.NoError(t, d.store.Records(ctx, id, 1, 0, func(r eventstore.Record) error {
			for _, other := range ids {
				if other != id {
					require.NotContains(t, string(r.Payload), admins[other], "tenant %s's chain names a key of %s", id, other)
				}
			}
			return nil
		}))
	}
}

// isRefusal reports a decider's or authorization's refusal, which random
// operations are expected to meet (a suspended tenant, a duplicate name).
func isRefusal(err error) bool {
	for _, target := range []error{tenants.ErrTenantSuspended, policy.ErrConflict, agents.ErrConflict, keys.ErrInvalidKey} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// clusterNode is a node of a cluster as the Registry sees it: it
// sequences the chains in sequencing, and records the chains opened.
type clusterNode struct {
	mu         sync.Mutex
	sequencing map[string]bool
	opened     []string
}

func (c *clusterNode) Opened(l *writeside.Ledger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, l.Chain())
}

func (c *clusterNode) Sequencing(chain string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sequencing[chain]
}

func (c *clusterNode) AwaitSequencing(_ context.Context, chain string) error {
	if !c.Sequencing(chain) {
		return fmt.Errorf("not sequencing %s", chain)
	}
	return nil
}

func (c *clusterNode) sequence(chain string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sequencing[chain] = true
}

// TestClusterNodeWritesOnlyTheChainsItSequences: on a node of a cluster the
// Registry appends to a tenant's chain only while the node sequences it. A
// tenant whose creation reached the system chain alone (the node could not
// take the tenant chain's lease) is opened by Sync without a write, and
// Reconcile records it on the tenant's chain, actor system:repair, once
// the node sequences that chain; a second Reconcile appends nothing.
func TestClusterNodeWritesOnlyTheChainsItSequences(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	node := &clusterNode{sequencing: map[string]bool{tenants.SystemChain: true}}
	reg, err := tenancy.Open(ctx, tenancy.Config{Store: store, Logger: quiet, Cluster: node,
		Ledger: writeside.Config{SnapshotEvery: writeside.NoSnapshots}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, reg.Close()) })
	require.Equal(t, []string{tenants.SystemChain}, node.opened, "the system chain is opened first and handed to the node")
	key, _, err := reg.CreateSuperadminKey(ctx, writeside.ActorInit, "sa")
	require.NoError(t, err)
	sa, err := reg.Authenticate(key)
	require.NoError(t, err)

	info, _, _, err := reg.CreateTenant(ctx, sa, tenants.CreateCommand{TenantID: "acme"}, "")
	require.Error(t, err, "the node does not sequence acme's chain")
	require.Equal(t, "acme", info.TenantID, "the tenant is on the system chain")
	records := func() []string {
		var got []string
		require.NoError(t, store.Records(ctx, "acme", 1, 0, func(r eventstore.Record) error {
			got = append(got, r.Type+" by "+r.Actor)
			return nil
		}))
		return got
	}
	require.Empty(t, records(), "nothing was appended to a chain the node does not sequence")

	require.NoError(t, reg.Sync(ctx))
	_, open := reg.Tenant("acme")
	require.True(t, open, "Sync opens the tenants the system chain lists")
	require.Empty(t, records(), "opening it wrote nothing")
	require.Contains(t, node.opened, "acme")

	node.sequence("acme")
	require.NoError(t, reg.Reconcile(ctx, "acme"))
	require.Equal(t, []string{tenants.TypeTenantCreated + " by " + tenancy.ActorRepair}, records())
	require.NoError(t, reg.Reconcile(ctx, "acme"))
	require.Len(t, records(), 1, "a second Reconcile appends nothing")
	require.NoError(t, reg.Reconcile(ctx, tenants.SystemChain), "the system chain is no tenant's")

	// With the chain sequenced, the superadmin's actions reach both chains.
	_, err = reg.SuspendTenant(ctx, sa, "acme", "drill")
	require.NoError(t, err)
	require.Equal(t, tenants.TypeTenantSuspended+" by "+sa.Actor(), records()[1])
}
