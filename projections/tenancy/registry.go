// Package tenancy holds the tenants of one deployment: the system chain
// (the tenant registry and the superadmin keys) and, for every tenant, a
// Ledger and an audit Index over that tenant's own chain, all on one shared
// store. It is the one place that maps an API key to the chain it may act
// on: every key hash is owned by exactly one chain, so a key of one tenant
// never authenticates in another (Authenticate).
//
// Superadmin actions (CreateTenant, SuspendTenant, ResumeTenant,
// MintAdminKey) are recorded first on the system chain and then on the
// tenant's own chain with the same actor, "superadmin:<key id>", so that a
// tenant's auditors, who verify only their chain, see them. The two appends
// are not one transaction: a crash between them leaves the tenant's record
// missing, and Open appends it (actor system:repair) before serving.
//
// A Registry is safe for concurrent use. It does not own the store: close
// the Registry's users (the HTTP server) first, then the Registry, then the
// store.
package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/writeside"
)

// Actors of the changes the Registry makes on its own.
const (
	// ActorUpgrade creates tenant default in a folder written before tenants.
	ActorUpgrade = "system:upgrade"
	// ActorRepair appends a tenant's own record of a superadmin action that
	// a crash left on the system chain alone.
	ActorRepair = "system:repair"
)

// DefaultTenantName is the display name of tenant default.
const DefaultTenantName = "default"

// Config configures a Registry. Store is required.
type Config struct {
	// Store holds every chain. Required; the Registry never closes it.
	Store eventstore.LogStore
	// Ledger is the template of every Ledger the Registry opens (Clock,
	// Entropy, Logger, RequireBoundKeys, SnapshotEvery); the Registry sets
	// Store, Chain and KeyAdded.
	Ledger writeside.Config
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// OnOpen, if set, is called for every tenant once its Ledger and
	// Index are open (at Open, and as EnsureDefault or CreateTenant add
	// one), to start what runs per tenant (the alerts engine). The stop
	// it returns runs at Close, before the tenant's Ledger closes. An
	// error fails the Open, or the creation after the tenant's records
	// are written (a restart retries it). Called with the Registry's lock
	// held: it must not call the Registry.
	OnOpen func(ctx context.Context, t *Tenant) (stop func(), err error)
	// Cluster, if set, is the node of a cluster (serve --nats) the
	// Registry runs on, which may append only to the chains it sequences.
	// Nil for a single node.
	Cluster Cluster
}

// Cluster is what a Registry needs of a node of a cluster. Its methods
// are called concurrently, Opened with the Registry's lock held.
type Cluster interface {
	// Opened is called once for every Ledger the Registry opens, the
	// system chain's first, before the Registry writes to it: the node
	// follows the chain and contends for it.
	Opened(l *writeside.Ledger)
	// Sequencing reports whether this node may append to chain now.
	Sequencing(chain string) bool
	// AwaitSequencing waits until this node may append to chain, and
	// returns an error if it may not by the time ctx ends or the node
	// gives up.
	AwaitSequencing(ctx context.Context, chain string) error
}

// Tenant is one tenant's projections. Its fields are set once and never
// change; the Ledger and Index are the Registry's to close.
type Tenant struct {
	// ID is the tenant id, which is also its chain's name.
	ID string
	// Ledger is the tenant's live state and write path.
	Ledger *writeside.Ledger
	// Index answers the tenant's audit queries, exports and as_of reads.
	Index *readside.Index

	suspended atomic.Bool
	stop      func() // stops what OnOpen started, then the Index; once
}

// Suspended reports whether the tenant is suspended (its keys are refused
// with tenants.ErrTenantSuspended).
func (t *Tenant) Suspended() bool { return t.suspended.Load() }

// Principal is who presented a key: a tenant's key with its tenant, or a
// superadmin key (Tenant nil).
type Principal struct {
	Key    keys.Key
	Tenant *Tenant
}

// Superadmin reports whether p holds a superadmin key.
func (p Principal) Superadmin() bool { return p.Tenant == nil }

// Actor returns what the log records as p's actor on a chain: the key id on
// its own tenant's chain, "superadmin:<key id>" for a superadmin.
func (p Principal) Actor() string {
	if p.Superadmin() {
		return domain.SuperadminActorPrefix + p.Key.KeyID
	}
	return p.Key.KeyID
}

// Registry is the set of tenants of a deployment. See the package doc.
type Registry struct {
	cfg    Config
	system *writeside.Ledger

	// mu serializes superadmin actions and the opening of tenants.
	mu sync.Mutex
	// tenants is an immutable map, replaced whole under mu, read without
	// locks.
	tenants atomic.Pointer[map[string]*Tenant]
	// owners maps every key hash to the chain that holds the key.
	owners ownerIndex

	ctx    context.Context // the Indexes' lifetime
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens the system chain and every tenant it lists. A store written
// before tenants existed has an empty system chain: EnsureDefault upgrades
// it. Close it when done, before closing the store.
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("tenancy: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Ledger.Logger == nil {
		cfg.Ledger.Logger = cfg.Logger
	}
	r := &Registry{cfg: cfg}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	empty := map[string]*Tenant{}
	r.tenants.Store(&empty)
	system, err := r.openLedger(ctx, tenants.SystemChain)
	if err != nil {
		r.cancel()
		return nil, err
	}
	r.system = system
	for _, t := range system.Tenants() {
		if _, err := r.openTenant(ctx, t, ActorRepair, false); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	return r, nil
}

// openLedger opens the Ledger of chain and records who owns its keys.
func (r *Registry) openLedger(ctx context.Context, chain string) (*writeside.Ledger, error) {
	cfg := r.cfg.Ledger
	cfg.Store, cfg.Chain = r.cfg.Store, chain
	n := r.owners.Number(chain)
	cfg.KeyAdded = func(h [32]byte) { r.owners.Store(h, n) }
	l, err := writeside.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tenancy: open chain %s: %w", chain, err)
	}
	if r.cfg.Cluster != nil {
		r.cfg.Cluster.Opened(l)
	}
	for _, h := range l.KeyHashes() {
		if !r.owners.Store(h, n) {
			continue
		}
		if prev := r.holder(h); prev != nil {
			_ = l.Close()
			return nil, fmt.Errorf("tenancy: a key hash is held by both chain %s and chain %s", prev.Chain(), chain)
		}
	}
	return l, nil
}

// holder returns the open Ledger (system chain or published tenant) that
// holds the key with hash h, or nil. It asks each in turn: for hashes the
// owner index cannot route alone.
func (r *Registry) holder(h [32]byte) *writeside.Ledger {
	if r.system != nil && r.system.HoldsKeyHash(h) {
		return r.system
	}
	for _, t := range *r.tenants.Load() {
		if t.Ledger.HoldsKeyHash(h) {
			return t.Ledger
		}
	}
	return nil
}

// openTenant opens the Ledger and Index of t (known to the system chain)
// and publishes it. Where the tenant's chain does not yet record its
// creation and status as the system chain does (a new tenant, or a crash
// between the two appends), it appends them with actor. On a node of a
// cluster it appends only if this node sequences the chain, waiting for
// that when await is set (a tenant this node creates); otherwise the
// sequencer's Reconcile appends them. The caller holds mu or is Open.
func (r *Registry) openTenant(ctx context.Context, t tenants.Tenant, actor string, await bool) (*Tenant, error) {
	l, err := r.openLedger(ctx, t.TenantID)
	if err != nil {
		return nil, err
	}
	write := true
	if cl := r.cfg.Cluster; cl != nil {
		if await {
			if err := cl.AwaitSequencing(ctx, t.TenantID); err != nil {
				_ = l.Close()
				return nil, fmt.Errorf("tenancy: sequence tenant %s's chain: %w", t.TenantID, err)
			}
		}
		write = cl.Sequencing(t.TenantID)
	}
	if write {
		if err := catchUp(ctx, l, t, actor); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	ix, err := readside.NewIndex(r.cfg.Store, t.TenantID, r.cfg.Logger)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	if err := r.publish(l, ix, t); err != nil {
		return nil, err
	}
	tn, _ := r.Tenant(t.TenantID)
	return tn, nil
}

// publish runs ix and what OnOpen starts for tenant t and makes it
// visible. On error it closes l. The caller holds mu or is Open.
func (r *Registry) publish(l *writeside.Ledger, ix *readside.Index, t tenants.Tenant) error {
	ictx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.wg.Go(func() { defer close(done); _ = ix.Run(ictx) })
	tn := &Tenant{ID: t.TenantID, Ledger: l, Index: ix, stop: sync.OnceFunc(func() { cancel(); <-done })}
	tn.suspended.Store(t.Status == tenants.StatusSuspended)
	if r.cfg.OnOpen != nil {
		stop, err := r.cfg.OnOpen(r.ctx, tn)
		if err != nil {
			tn.stop()
			_ = l.Close()
			return fmt.Errorf("tenancy: start tenant %s: %w", t.TenantID, err)
		}
		indexStop := tn.stop
		tn.stop = sync.OnceFunc(func() { stop(); indexStop() })
	}
	next := maps.Clone(*r.tenants.Load())
	next[t.TenantID] = tn
	r.tenants.Store(&next)
	return nil
}

// catchUp makes the tenant's chain agree with the system chain's view of
// it (sys): created, and suspended or not, recorded by actor.
func catchUp(ctx context.Context, l *writeside.Ledger, sys tenants.Tenant, actor string) error {
	own, ok := l.Tenant(sys.TenantID)
	if !ok {
		if _, err := l.CreateTenant(ctx, actor, tenants.CreateCommand{TenantID: sys.TenantID, Name: sys.Name}); err != nil {
			return fmt.Errorf("tenancy: record tenant %s on its chain: %w", sys.TenantID, err)
		}
		own, _ = l.Tenant(sys.TenantID)
	}
	switch {
	case sys.Status == tenants.StatusSuspended && own.Status != tenants.StatusSuspended:
		_, err := l.SuspendTenant(ctx, actor, sys.TenantID, sys.SuspendReason)
		return err
	case sys.Status != tenants.StatusSuspended && own.Status == tenants.StatusSuspended:
		_, err := l.ResumeTenant(ctx, actor, sys.TenantID)
		return err
	}
	return nil
}

// Close stops every Index and closes every Ledger. The store stays open.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range *r.tenants.Load() {
		t.stop() // what OnOpen started, then the Index
	}
	r.cancel()
	r.wg.Wait()
	var errs []error
	for _, t := range *r.tenants.Load() {
		errs = append(errs, t.Ledger.Close())
	}
	if r.system != nil {
		errs = append(errs, r.system.Close())
	}
	return errors.Join(errs...)
}

// System returns the Ledger of the system chain (tenant registry and
// superadmin keys).
func (r *Registry) System() *writeside.Ledger { return r.system }

// Tenant returns the open tenant with id.
func (r *Registry) Tenant(id string) (*Tenant, bool) {
	t, ok := (*r.tenants.Load())[id]
	return t, ok
}

// Tenants returns every tenant as the system chain records it, sorted by
// id.
func (r *Registry) Tenants() []tenants.Tenant { return r.system.Tenants() }

// Notify tells the Index of chain that its durable head moved. Unknown
// chains (system) are ignored. Safe to call from the store's publisher.
func (r *Registry) Notify(chain string) {
	if t, ok := r.Tenant(chain); ok {
		t.Index.Notify()
	}
}

// Chains returns the chain of every tenant, sorted, then the system chain.
func (r *Registry) Chains() []string {
	ids := slices.Sorted(maps.Keys(*r.tenants.Load()))
	return append(ids, tenants.SystemChain)
}

// Authenticate returns who presented plaintext: an active key of a tenant
// with that tenant, or an active superadmin key. It returns
// keys.ErrInvalidKey for a key no chain holds or one revoked or expired,
// and an error wrapping tenants.ErrTenantSuspended (with the Principal) for
// an active key of a suspended tenant. It takes no lock for a key seen
// before.
func (r *Registry) Authenticate(plaintext string) (Principal, error) {
	if keys.CheckFormat(plaintext) != nil {
		return Principal{}, keys.ErrInvalidKey
	}
	h := keys.Hash(plaintext)
	chain, shared, ok := r.owners.Load(h)
	if shared {
		if l := r.holder(h); l != nil {
			chain = l.Chain()
		} else {
			ok = false
		}
	}
	if !ok {
		return Principal{}, keys.ErrInvalidKey
	}
	if chain == tenants.SystemChain {
		k, err := r.system.AuthenticateHash(h)
		if err != nil {
			return Principal{}, err
		}
		if k.Scope != keys.ScopeSuperadmin {
			return Principal{}, keys.ErrInvalidKey // the system chain holds superadmin keys only
		}
		return Principal{Key: k}, nil
	}
	t, ok := r.Tenant(chain)
	if !ok {
		return Principal{}, keys.ErrInvalidKey // a tenant being created
	}
	k, err := t.Ledger.AuthenticateHash(h)
	if err != nil {
		return Principal{}, err
	}
	p := Principal{Key: k, Tenant: t}
	if t.Suspended() {
		return p, fmt.Errorf("%w: tenant %s", tenants.ErrTenantSuspended, t.ID)
	}
	return p, nil
}

// EnsureDefault creates tenant default when the system chain does not list
// it: on a new folder, or on a folder written before tenants, whose chain
// default becomes that tenant with everything in it. It reports whether it
// created it. Idempotent.
func (r *Registry) EnsureDefault(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.system.Tenant(tenants.DefaultID); ok {
		return false, nil
	}
	created, err := r.system.CreateTenant(ctx, ActorUpgrade, tenants.CreateCommand{TenantID: tenants.DefaultID, Name: DefaultTenantName})
	if err != nil {
		return false, fmt.Errorf("tenancy: create tenant default: %w", err)
	}
	if _, err := r.openTenant(ctx, tenantOf(created), ActorUpgrade, true); err != nil {
		return false, err
	}
	return true, nil
}

// Sync opens every tenant the system chain lists that is not open yet,
// and brings each open tenant's suspension in line with the system
// chain's record. On a node of a cluster the system chain's follower
// calls it each time the chain moved: that is how a node learns of the
// tenants another node created, suspended or resumed. A single node does
// not need it.
func (r *Registry) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, info := range r.system.Tenants() {
		t, ok := r.Tenant(info.TenantID)
		if !ok {
			if _, err := r.openTenant(ctx, info, ActorRepair, false); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		t.suspended.Store(info.Status == tenants.StatusSuspended)
	}
	return errors.Join(errs...)
}

// Reconcile appends to tenant chain's own chain what the system chain
// records of the tenant and that chain does not (its creation, a
// suspension or resumption that a node recorded on the system chain alone
// before it failed), with actor system:repair. A node of a cluster calls
// it when it starts sequencing chain, after the system chain. It does
// nothing for the system chain or a chain the Registry has not opened.
func (r *Registry) Reconcile(ctx context.Context, chain string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, open := r.Tenant(chain)
	info, known := r.system.Tenant(chain)
	if !open || !known {
		return nil
	}
	return catchUp(ctx, t.Ledger, info, ActorRepair)
}

// HasSuperadminKey reports whether the system chain holds a superadmin
// key, active or not: a deployment is given one once (then a reset mints
// another).
func (r *Registry) HasSuperadminKey() bool {
	for _, k := range r.system.Keys() {
		if k.Scope == keys.ScopeSuperadmin {
			return true
		}
	}
	return false
}

// CreateSuperadminKey mints a superadmin key on the system chain for actor
// (a system actor: system:init, system:reset). It returns the plaintext,
// shown once, and the key's record.
func (r *Registry) CreateSuperadminKey(ctx context.Context, actor, name string) (string, keys.KeyCreated, error) {
	var created keys.KeyCreated
	var plaintext string
	_, err := r.system.Write(ctx, actor, func(tx *writeside.Tx) ([]domain.Event, error) {
		var err error
		created, plaintext, err = keys.CreateSuperadmin(tx.State.Keys, keys.CreateCommand{Name: name}, tx.Now, tx.NewID("key"), tx.Entropy)
		if err != nil {
			return nil, err
		}
		return []domain.Event{created}, nil
	})
	if err != nil {
		return "", keys.KeyCreated{}, err
	}
	return plaintext, created, nil
}

// CreateTenant creates a tenant for superadmin p: tenant.created on the
// system chain, then on the new tenant's chain, then the tenant's first
// admin key (adminKeyName, on the tenant's chain). It returns the tenant,
// the admin key's plaintext (shown once) and its record. Errors: the
// deciders' (tenants.ErrExists, *tenants.ValidationError), keys errors for
// an invalid superadmin key, or a log error; when the tenant was created
// but its key was not, the tenant is returned with the error, and
// MintAdminKey makes one.
func (r *Registry) CreateTenant(ctx context.Context, p Principal, cmd tenants.CreateCommand, adminKeyName string) (tenants.Tenant, string, keys.KeyCreated, error) {
	if !p.Superadmin() {
		return tenants.Tenant{}, "", keys.KeyCreated{}, keys.ErrInsufficientScope
	}
	r.mu.Lock()
	created, err := r.system.CreateTenant(ctx, p.Actor(), cmd)
	if err != nil {
		r.mu.Unlock()
		return tenants.Tenant{}, "", keys.KeyCreated{}, err
	}
	// openTenant records tenant.created on the tenant's own chain, with
	// the superadmin as actor.
	t, err := r.openTenant(ctx, tenantOf(created), p.Actor(), true)
	r.mu.Unlock()
	if err != nil {
		return tenantOf(created), "", keys.KeyCreated{}, err
	}
	plaintext, key, err := r.mintAdminKey(ctx, t, p, adminKeyName)
	if err != nil {
		return tenantOf(created), "", keys.KeyCreated{}, err
	}
	info, _ := r.system.Tenant(created.TenantID)
	return info, plaintext, key, nil
}

// MintAdminKey creates an admin key in tenant id for superadmin p (the
// tenant's first, or a new one when its admins lost theirs). The record is
// on the tenant's chain with actor superadmin:<key id>. Errors:
// tenants.ErrNotFound, keys errors, a log error.
func (r *Registry) MintAdminKey(ctx context.Context, p Principal, id, name string) (string, keys.KeyCreated, error) {
	if !p.Superadmin() {
		return "", keys.KeyCreated{}, keys.ErrInsufficientScope
	}
	if err := r.checkSuperadmin(p); err != nil {
		return "", keys.KeyCreated{}, err
	}
	t, ok := r.Tenant(id)
	if !ok {
		return "", keys.KeyCreated{}, fmt.Errorf("%w: %s", tenants.ErrNotFound, id)
	}
	return r.mintAdminKey(ctx, t, p, name)
}

func (r *Registry) mintAdminKey(ctx context.Context, t *Tenant, p Principal, name string) (string, keys.KeyCreated, error) {
	if name == "" {
		name = "admin"
	}
	created, plaintext, _, err := t.Ledger.CreateKey(ctx, p.Actor(), keys.CreateCommand{Name: name, Scope: string(keys.ScopeAdmin)})
	if err != nil {
		return "", keys.KeyCreated{}, err
	}
	return plaintext, created, nil
}

// checkSuperadmin confirms that p's key is still an active superadmin key
// on the system chain now (a tenant chain cannot check it: the key is not
// there). The system chain's own writes check it at their position.
func (r *Registry) checkSuperadmin(p Principal) error {
	k, err := r.system.Key(p.Key.KeyID)
	if err != nil || k.Scope != keys.ScopeSuperadmin || !k.IsActive(r.system.Now()) {
		return keys.ErrInvalidKey
	}
	return nil
}

// SuspendTenant suspends tenant id for superadmin p: on the system chain,
// then on the tenant's, after which its keys are refused. Errors:
// tenants.ErrNotFound, tenants.ErrSuspended, *tenants.ValidationError,
// keys errors, a log error.
func (r *Registry) SuspendTenant(ctx context.Context, p Principal, id, reason string) (tenants.Tenant, error) {
	return r.lifecycle(ctx, p, id, func(l *writeside.Ledger, actor string) error {
		_, err := l.SuspendTenant(ctx, actor, id, reason)
		return err
	})
}

// ResumeTenant resumes tenant id for superadmin p, like SuspendTenant.
// Errors: tenants.ErrNotFound, tenants.ErrActive, keys errors, a log error.
func (r *Registry) ResumeTenant(ctx context.Context, p Principal, id string) (tenants.Tenant, error) {
	return r.lifecycle(ctx, p, id, func(l *writeside.Ledger, actor string) error {
		_, err := l.ResumeTenant(ctx, actor, id)
		return err
	})
}

// lifecycle runs change on the system chain, then on tenant id's chain,
// and publishes the tenant's new status.
func (r *Registry) lifecycle(ctx context.Context, p Principal, id string, change func(l *writeside.Ledger, actor string) error) (tenants.Tenant, error) {
	if !p.Superadmin() {
		return tenants.Tenant{}, keys.ErrInsufficientScope
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := change(r.system, p.Actor()); err != nil {
		return tenants.Tenant{}, err
	}
	info, _ := r.system.Tenant(id)
	t, ok := r.Tenant(id)
	if !ok {
		return info, fmt.Errorf("tenancy: tenant %s is not open", id)
	}
	// The system chain's record decides: publish before the tenant's own
	// record, so no key of a suspended tenant passes in between.
	t.suspended.Store(info.Status == tenants.StatusSuspended)
	if err := change(t.Ledger, p.Actor()); err != nil {
		return info, fmt.Errorf("tenancy: record on tenant %s's chain: %w", id, err)
	}
	return info, nil
}

// tenantOf is the tenant a tenant.created makes.
func tenantOf(c tenants.TenantCreated) tenants.Tenant {
	return tenants.Tenant{TenantID: c.TenantID, Name: c.Name, Status: tenants.StatusActive, CreatedAt: c.CreatedAt}
}
