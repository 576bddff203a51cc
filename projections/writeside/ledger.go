// Package writeside is the write side of custos: the live state of one chain
// (keys, policies, agents, sessions), and the one path by which it changes.
// Every change is decided against the live state under one lock, with the
// acting key checked at that position (Write), appended to the log and
// folded in with the same domain Apply that rebuilds the state at start-up
// (projections/replay). Authentication reads a lock-free copy of the keys
// that follows every Apply (keys.go).
//
// A Ledger is safe for concurrent use. It does not own the store: the caller
// closes the Ledger's users (HTTP server) first, then the Ledger, then the
// store. The read side (projections/readside) never goes through it.
package writeside

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/replay"
)

// ErrInconsistent means an event that the log accepted could not be applied
// to the live state: a bug or a corrupt log. The Ledger refuses writes after
// it.
var ErrInconsistent = errors.New("writeside: live state inconsistent with the log")

// Config configures a Ledger. Store is required.
type Config struct {
	// Store is the log and the derived data beside it (snapshots). Required;
	// the Ledger never closes it.
	Store eventstore.LogStore
	// Chain is the chain (tenant) this Ledger projects. Default
	// eventstore.DefaultChain.
	Chain string
	// Clock is the time source. Default time.Now.
	Clock func() time.Time
	// Entropy feeds ids and key material. Default crypto/rand.Reader.
	Entropy io.Reader
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// RequireBoundKeys, when set, lets only keys bound to an agent evaluate:
	// creating an evaluate key without agent_id is refused, and an
	// evaluation by an unbound key is refused with ErrUnboundKey and
	// appends nothing. Default false: an unbound evaluate key may evaluate
	// as any agent.
	RequireBoundKeys bool
	// SnapshotEvery is how many events apart the Ledger saves a snapshot of
	// its state next to the log, and Open starts from the newest snapshot
	// that matches the chain instead of replaying it all (see snapshot.go).
	// Default (0) DefaultSnapshotEvery; NoSnapshots (any negative value)
	// disables them: Open always replays the whole chain and saves none.
	SnapshotEvery int
	// KeyAdded, if set, is called with the hash of every key this Ledger
	// appends or folds in from another node (key.created, and the new key
	// of key.rotated; CatchUp, Rebuild), under the write lock and before
	// the change returns, so a deployment-wide
	// directory of keys (projections/tenancy) knows the key before its
	// creator can present it. It must be fast and must not call the
	// Ledger. Keys already in the chain at Open are in KeyHashes. Default
	// nil.
	KeyAdded func(hash [32]byte)
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("writeside: Config.Store is required"))
	}
	if c.Chain != "" {
		if err := eventstore.ValidateChain(c.Chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Chain == "" {
		c.Chain = eventstore.DefaultChain
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Entropy == nil {
		c.Entropy = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	return c
}

// Ledger holds the live state of one chain and serializes every change to it.
type Ledger struct {
	cfg   Config
	ids   *ulid.MonotonicEntropy // guarded by mu
	mu    sync.RWMutex
	state *domain.State
	last  eventstore.Head // guarded by mu: the last record folded into state
	// lastTime is the time of the last record folded into state (guarded by
	// mu). A change is decided at max(clock, lastTime): the store never
	// lets time decrease, so the decider's now is the record's time.
	lastTime time.Time
	err      error // set once the live state can no longer be trusted
	// stale is set once a write folded into state failed with
	// eventstore.ErrFenced (follow.go): CatchUp rebuilds the state.
	stale bool
	snap  *snapshotter // nil when snapshots are off
	auth  authCache    // lock-free key lookups for Authenticate (keys.go)
}

// Open builds a new Ledger from the chain: from the newest snapshot that
// matches the chain plus the records after it, or from genesis (see
// snapshot.go). Close it when done, before closing the store.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Ledger{cfg: cfg, ids: ulid.Monotonic(cfg.Entropy, 0)}
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Read calls fn with the live state under a read lock. fn must not keep the
// state or anything pointing into it after it returns, and must not call
// other Ledger methods.
func (l *Ledger) Read(fn func(s *domain.State)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	fn(l.state)
}

// Now returns the Ledger's clock reading.
func (l *Ledger) Now() time.Time { return l.cfg.Clock().UTC() }

// Tx is what a decider sees: the live state, the time of the change, and
// sources of ids and entropy. It is valid only during the decider call.
type Tx struct {
	State *domain.State
	Now   time.Time
	// Entropy is for key material.
	Entropy io.Reader
	l       *Ledger
}

// NewID returns prefix + "_" + a new ULID (upper case, monotonic).
func (tx *Tx) NewID(prefix string) string {
	id := ulid.MustNew(ulid.Timestamp(tx.Now), tx.l.ids)
	return prefix + "_" + id.String()
}

// Decider decides the events of one change from the live state. It must not
// modify tx.State; the Ledger applies the returned events.
type Decider func(tx *Tx) ([]domain.Event, error)

// Write runs decide against the live state, appends the events it returns
// (with actor) and applies them, all under the write lock, so concurrent
// changes see each other in log order. It then waits, without the lock, until
// the records are durable: many writers share one fsync. A decider error is
// returned as is and nothing is appended. A log error (for example
// eventstore.ErrStoreFailed) is returned wrapped.
//
// actor is a key id, a system actor (domain.IsSystemActor) or a superadmin
// (domain.IsSuperadminActor, whose key lives on the system chain and who
// may record only tenant events: domain.AuthorizeEvent). A key must be
// valid for the change at the change's own position: under the write lock,
// against the state the change is decided on and at the time it is recorded
// at, the key must exist and be active (keys.Authorize) before decide runs,
// and its scope must allow every event decide returns
// (domain.AuthorizeEvent). Otherwise Write returns keys.ErrInvalidKey or
// keys.ErrInsufficientScope and appends nothing, so a revocation that
// returned is in force for every change sequenced after it.
func (l *Ledger) Write(ctx context.Context, actor string, decide Decider) ([]eventstore.Record, error) {
	p, err := l.enqueue(ctx, actor, decide)
	if err != nil || p == nil {
		return nil, err
	}
	recs, err := p.Wait(ctx)
	if err != nil {
		l.fencedWrite(err)
		return nil, fmt.Errorf("writeside: append: %w", err)
	}
	return recs, nil
}

// WriteAsync is Write without waiting for durability: the change is applied
// and will be committed with the next group. Use it only for facts that may
// be lost in a crash without harm (key.used).
func (l *Ledger) WriteAsync(ctx context.Context, actor string, decide Decider) error {
	p, err := l.enqueue(ctx, actor, decide)
	if err != nil || p == nil {
		return err
	}
	// Nobody waits for it, but a fenced batch leaves its events in the
	// live state only: note it for CatchUp (follow.go).
	go func() {
		if _, err := p.Wait(context.WithoutCancel(ctx)); err != nil {
			l.fencedWrite(err)
		}
	}()
	return nil
}

func (l *Ledger) enqueue(ctx context.Context, actor string, decide Decider) (*eventstore.Pending, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	now := l.Now()
	if now.Before(l.lastTime) {
		now = l.lastTime
	}
	switch {
	case domain.IsSystemActor(actor):
	case domain.IsSuperadminActor(actor):
		// A superadmin's key lives on the system chain: there it must be
		// valid at this position; on a tenant's chain AuthorizeEvent below
		// limits it to the tenant events and minting admin keys.
		if l.cfg.Chain == tenants.SystemChain {
			if _, err := keys.Authorize(l.state.Keys, strings.TrimPrefix(actor, domain.SuperadminActorPrefix), keys.ScopeSuperadmin, now); err != nil {
				return nil, err
			}
		}
	default:
		if _, err := keys.Authorize(l.state.Keys, actor, keys.ScopeEvaluate, now); err != nil {
			return nil, err
		}
		if l.state.Tenants.AnySuspended() {
			return nil, tenants.ErrTenantSuspended
		}
	}
	tx := &Tx{State: l.state, Now: now, Entropy: l.cfg.Entropy, l: l}
	events, err := decide(tx)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	drafts := make([]eventstore.Draft, len(events))
	for i, ev := range events {
		if err := l.state.AuthorizeEvent(actor, ev, now); err != nil {
			return nil, err
		}
		payload, err := domain.Encode(ev)
		if err != nil {
			return nil, err
		}
		drafts[i] = eventstore.Draft{Time: tx.Now, Type: ev.EventType(), Actor: actor, Payload: payload}
	}
	p, err := l.cfg.Store.Enqueue(ctx, l.cfg.Chain, drafts...)
	if err != nil {
		return nil, fmt.Errorf("writeside: append: %w", err)
	}
	for i, ev := range events {
		if err := l.state.Apply(replay.Meta(p.Records()[i]), ev); err != nil {
			l.err = fmt.Errorf("%w: %s: %w", ErrInconsistent, ev.EventType(), err)
			l.cfg.Logger.Error("live state rejected an appended event; refusing writes", "type", ev.EventType(), "err", err)
			return nil, l.err
		}
		l.refreshAuth() // publish key changes to Authenticate (keys.go)
		l.keyAdded(ev)
	}
	l.applied(p.Records()[len(events)-1])
	return p, nil
}
