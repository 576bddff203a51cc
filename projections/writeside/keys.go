package writeside

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
)

// Actors recorded for changes no API key made.
const (
	ActorInit  = "system:init"
	ActorReset = "system:reset"
)

// CreateKey decides, appends and applies a key.created. It returns the
// event (the new key's record) and the plaintext key, which the caller shows
// once and never stores or logs. Errors: the keys package's validation
// errors, or a log error.
func (l *Ledger) CreateKey(ctx context.Context, actor string, cmd keys.CreateCommand) (keys.KeyCreated, string, eventstore.Record, error) {
	var created keys.KeyCreated
	var plaintext string
	recs, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		created, plaintext, err = keys.Create(tx.State.Keys, cmd, tx.Now, tx.NewID("key"), tx.Entropy)
		if err != nil {
			return nil, err
		}
		if cmd.AgentID != "" {
			if _, ok := tx.State.Agents.ByID(cmd.AgentID); !ok {
				return nil, &keys.ValidationError{Field: "agent_id", Problem: "must name a registered agent"}
			}
		} else if l.cfg.RequireBoundKeys && created.Scope == keys.ScopeEvaluate {
			return nil, &keys.ValidationError{Field: "agent_id", Problem: "is required for evaluate keys: this server runs with --require-bound-keys"}
		}
		return []domain.Event{created}, nil
	})
	if err != nil {
		return keys.KeyCreated{}, "", eventstore.Record{}, err
	}
	return created, plaintext, recs[0], nil
}

// RotateKey decides, appends and applies a key.rotated. When it returns, the
// old key is already rejected (or limited to its grace window) everywhere in
// the process.
func (l *Ledger) RotateKey(ctx context.Context, actor string, cmd keys.RotateCommand) (keys.KeyRotated, string, error) {
	var rotated keys.KeyRotated
	var plaintext string
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		rotated, plaintext, err = keys.Rotate(tx.State.Keys, cmd, tx.Now, tx.NewID("key"), tx.Entropy)
		if err != nil {
			return nil, err
		}
		return []domain.Event{rotated}, nil
	})
	if err != nil {
		return keys.KeyRotated{}, "", err
	}
	return rotated, plaintext, nil
}

// RevokeKey decides, appends and applies a key.revoked and returns the key
// as it is afterwards. actorKeyID is the calling key (for the last-admin
// rule), actor what the log records.
func (l *Ledger) RevokeKey(ctx context.Context, actor, actorKeyID, keyID string) (keys.Key, error) {
	var key keys.Key
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		ev, err := keys.Revoke(tx.State.Keys, keyID, actorKeyID, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ev}, nil
	})
	if err != nil {
		return keys.Key{}, err
	}
	l.Read(func(s *domain.State) { key, _ = s.Keys.ByID(keyID) })
	return key, nil
}

// Authenticate returns the active key with this plaintext, or
// keys.ErrInvalidKey. It only reads; see RecordUse. It takes no lock for a
// key it has seen before (see authCache), so requests never queue behind
// writers to authenticate. The Key's pointer fields are shared: read only.
func (l *Ledger) Authenticate(plaintext string) (keys.Key, error) {
	if keys.CheckFormat(plaintext) != nil {
		return keys.Key{}, keys.ErrInvalidKey
	}
	return l.AuthenticateHash(keys.Hash(plaintext))
}

// AuthenticateHash is Authenticate for a key already checked with
// keys.CheckFormat and hashed with keys.Hash, so a caller that needed the
// hash first (projections/tenancy) does not hash it twice.
func (l *Ledger) AuthenticateHash(h [32]byte) (keys.Key, error) {
	now := l.Now()
	if k, ok := l.auth.lookup(h); ok {
		if !k.IsActive(now) {
			return keys.Key{}, keys.ErrInvalidKey
		}
		return *k, nil
	}
	// First use of this key since start (or not a key): ask the state and
	// remember the key. The read lock keeps writers, and so refresh, out
	// while the key is added.
	l.mu.RLock()
	defer l.mu.RUnlock()
	k, ok := l.state.Keys.ByHash(h)
	if !ok {
		return keys.Key{}, keys.ErrInvalidKey
	}
	l.auth.add(h, k)
	if !k.IsActive(now) {
		return keys.Key{}, keys.ErrInvalidKey
	}
	return k, nil
}

// authCache is a copy-on-write index of keys by hash that Authenticate reads
// without locks. It holds, for every key Authenticate has looked up, the key
// as the live state has it: the Ledger calls refreshAuth under its write
// lock after folding each event, so when a change to a key returns (rotate,
// revoke, use), every later Authenticate sees it. Keys enter lazily, on
// their first use (under the read lock, so never concurrently with
// refreshAuth); a key that is not cached is simply looked up in the state.
// Whether a cached key authenticates is decided at each call with
// keys.Key.IsActive, the same rule as keys.Authenticate (revocation, grace
// window and expiry against the current time). The zero value is empty.
type authCache struct {
	mu    sync.Mutex // serializes add
	index atomic.Pointer[authIndex]
}

// authIndex is immutable once published; its entries are updated in place.
type authIndex struct {
	byHash map[[32]byte]*authEntry
	byID   map[string]*authEntry
}

type authEntry struct {
	key atomic.Pointer[keys.Key] // never nil; the Key is never modified
}

func (c *authCache) lookup(h [32]byte) (*keys.Key, bool) {
	ix := c.index.Load()
	if ix == nil {
		return nil, false
	}
	e, ok := ix.byHash[h]
	if !ok {
		return nil, false
	}
	return e.key.Load(), true
}

// add caches k under its hash h. The caller holds the Ledger's read lock.
func (c *authCache) add(h [32]byte, k keys.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.index.Load()
	if old == nil {
		old = &authIndex{}
	} else if _, ok := old.byHash[h]; ok {
		return // another request added it first; refreshAuth keeps it current
	}
	ix := &authIndex{byHash: make(map[[32]byte]*authEntry, len(old.byHash)+1), byID: make(map[string]*authEntry, len(old.byID)+1)}
	maps.Copy(ix.byHash, old.byHash)
	maps.Copy(ix.byID, old.byID)
	e := &authEntry{}
	e.key.Store(&k)
	ix.byHash[h], ix.byID[k.KeyID] = e, e
	c.index.Store(ix)
}

// refreshAuth publishes to Authenticate every cached key that Apply created
// or changed since the last call, as the live state now has it. The caller
// holds the Ledger's write lock and calls it after every Apply: the key
// state itself says which keys changed (keys.State.TakeChanged), so no
// event type can be forgotten here.
func (l *Ledger) refreshAuth() {
	changed := l.state.Keys.TakeChanged()
	ix := l.auth.index.Load()
	if ix == nil {
		return
	}
	for _, id := range changed {
		if e, ok := ix.byID[id]; ok {
			if k, ok := l.state.Keys.ByID(id); ok {
				e.key.Store(&k)
			}
		}
	}
}

// RecordUse records a key.used for key, at most once a minute per key, so
// that last_used_at derives from the log. It does not wait for the fsync: a
// lost use record costs nothing. Call it for requests that succeeded, so
// that a rejected request appends nothing.
func (l *Ledger) RecordUse(ctx context.Context, key keys.Key) {
	if !keys.ShouldRecordUse(key, l.Now()) {
		return
	}
	err := l.WriteAsync(ctx, key.KeyID, func(tx *Tx) ([]domain.Event, error) {
		k, ok := tx.State.Keys.ByID(key.KeyID)
		if !ok || !keys.ShouldRecordUse(k, tx.Now) {
			return nil, nil // another request recorded it first
		}
		return []domain.Event{keys.KeyUsed{KeyID: key.KeyID, UsedAt: tx.Now}}, nil
	})
	switch {
	case errors.Is(err, keys.ErrInvalidKey):
		// Revoked or expired since the request was authenticated: a use
		// after that point is not recorded (Write refuses it).
	case errors.Is(err, eventstore.ErrFenced):
		// Another node sequences the chain (a cluster): reads served here
		// are not recorded as use; the sequencer records the writes'.
	case err != nil:
		// A failed store is reported by the request's own write, if any.
		l.cfg.Logger.Warn("record key use", "key_id", key.KeyID, "err", err)
	}
}

// Key returns the key with id, or keys.ErrNotFound.
func (l *Ledger) Key(id string) (keys.Key, error) {
	var key keys.Key
	var ok bool
	l.Read(func(s *domain.State) { key, ok = s.Keys.ByID(id) })
	if !ok {
		return keys.Key{}, fmt.Errorf("%w: %s", keys.ErrNotFound, id)
	}
	return key, nil
}

// Keys returns every key ever created, newest first.
func (l *Ledger) Keys() []keys.Key {
	var out []keys.Key
	l.Read(func(s *domain.State) { out = s.Keys.List() })
	return out
}

// keyAdded tells Config.KeyAdded of the key ev creates, if any. The caller
// holds the write lock.
func (l *Ledger) keyAdded(ev domain.Event) {
	if l.cfg.KeyAdded == nil {
		return
	}
	var created keys.KeyCreated
	switch e := ev.(type) {
	case keys.KeyCreated:
		created = e
	case keys.KeyRotated:
		created = e.NewKey
	default:
		return
	}
	var h [32]byte
	if n, err := hex.Decode(h[:], []byte(created.KeyHash)); err != nil || n != len(h) {
		return // keys.Create always writes 64 hex digits; Apply checked it
	}
	l.cfg.KeyAdded(h)
}

// KeyHashes returns the hash of every key of the chain, revoked and expired
// ones included.
func (l *Ledger) KeyHashes() [][32]byte {
	var out [][32]byte
	l.Read(func(s *domain.State) { out = s.Keys.Hashes() })
	return out
}

// HoldsKeyHash reports whether a key of this chain (revoked and expired
// ones included) has hash h.
func (l *Ledger) HoldsKeyHash(h [32]byte) bool {
	var ok bool
	l.Read(func(s *domain.State) { _, ok = s.Keys.ByHash(h) })
	return ok
}

// Suspended reports whether this chain's tenant is suspended (its keys
// change nothing).
func (l *Ledger) Suspended() bool {
	var out bool
	l.Read(func(s *domain.State) { out = s.Tenants.AnySuspended() })
	return out
}
