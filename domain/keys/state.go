package keys

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// Key is a read-only view of one key. It never contains the key or its hash.
// It has no JSON tags on purpose: the HTTP layer has its own DTOs.
type Key struct {
	KeyID     string
	Name      string
	Scope     Scope
	Prefix    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RevokedAt is when the key stops (or stopped) working; nil if it was
	// never revoked. After a rotation with grace it lies in the future.
	RevokedAt *time.Time
	// RotatedFrom is the id of the key this one replaced, if any.
	RotatedFrom string
	// RotatedTo is the id of the key that replaced this one, if any.
	RotatedTo string
	// LastUsedAt is the last recorded use; nil if never recorded.
	LastUsedAt *time.Time
	// AgentID is the agent an evaluate key is bound to, if any.
	AgentID string
}

// IsActive reports whether the key authenticates at now: it is false once
// RevokedAt <= now or now >= ExpiresAt.
func (k Key) IsActive(now time.Time) bool {
	if k.RevokedAt != nil && !now.Before(*k.RevokedAt) {
		return false
	}
	return now.Before(k.ExpiresAt)
}

// State is the key projection: every key ever created, by id and by hash.
// The zero State is empty and ready to use. See the package doc for the
// concurrency contract: Apply must be serialized by the caller.
type State struct {
	// byID and byHash hold the same entries. They are copy-on-write maps,
	// so that FrozenCopy costs O(shards); an entry they share with a
	// frozen copy is never changed in place (see mutable).
	byID   cow.Map[string, *entry, cow.String]
	byHash hashIndex
	// gen is the generation of s: it grows at every FrozenCopy, and an
	// entry whose gen is below it may be shared with a frozen copy.
	gen uint64
	// changed lists the ids of keys Apply created or changed since the
	// last TakeChanged, so that copies of keys kept elsewhere (the
	// Ledger's authentication cache) follow every event without knowing
	// event types. Every case of Apply reaches its entries through
	// mutable or insert, which record them.
	changed []string
}

// TakeChanged returns the ids of the keys Apply created or changed since
// the last call (in order, possibly repeated) and forgets them. A State
// that is never asked keeps a list that grows with every key event:
// callers that fold whole logs and keep the State call it once at the end.
func (s *State) TakeChanged() []string {
	out := s.changed
	s.changed = nil
	return out
}

// mutable returns the entry of key id for Apply to change, and records it
// as changed. An entry that a frozen copy may share (from an older
// generation) is copied first, so each entry is copied at most once per
// FrozenCopy and a frozen copy never sees a change.
func (s *State) mutable(id string) (*entry, bool) {
	e, ok := s.byID.Get(id)
	if !ok {
		return nil, false
	}
	if e.gen != s.gen {
		cp := *e
		cp.gen = s.gen
		e = &cp
		s.put(e)
	}
	s.changed = append(s.changed, id)
	return e, true
}

// entry is the stored form of a key. It holds only values (its change is
// never modified in place, only replaced), so copying an entry copies the
// key. Its layout is chosen for size, since a store may hold millions of
// keys: times are instants (16 bytes, not time.Time's 24) and what only a
// revoked or rotated key has sits behind one pointer (176 bytes in all,
// against 256 with time.Time and inline fields).
type entry struct {
	id, name, prefix, agentID string
	scope                     Scope
	hash                      [32]byte
	createdAt, expiresAt      instant
	lastUsedAt                instant // zero: never recorded
	change                    *change // nil: never revoked nor rotated
	gen                       uint64  // State.gen when the entry was made or copied
}

// change is what rotation and revocation add to a key. Shared between
// copies of an entry: replace it (withChange), never change it in place.
type change struct {
	rotatedFrom, rotatedTo string
	revokedAt              instant // zero: not revoked
}

// withChange sets e's change to a copy of the current one (or a zero one)
// edited by f.
func (e *entry) withChange(f func(c *change)) {
	var c change
	if e.change != nil {
		c = *e.change
	}
	f(&c)
	e.change = &c
}

func (e *entry) rotatedFrom() string {
	if e.change == nil {
		return ""
	}
	return e.change.rotatedFrom
}

func (e *entry) rotatedTo() string {
	if e.change == nil {
		return ""
	}
	return e.change.rotatedTo
}

// revokedAt returns when e stops (or stopped) working; zero if never revoked.
func (e *entry) revokedAt() time.Time {
	if e.change == nil {
		return time.Time{}
	}
	return e.change.revokedAt.Time()
}

// instant is a time.Time in UTC without its location pointer: seconds since
// time.Time's own epoch (year 1) and nanoseconds, covering every time.Time
// exactly. The zero instant is the zero time.Time.
type instant struct {
	sec  int64 // seconds since year 1 (time.Time's own epoch), so that zero means unset
	nsec int32
}

// zeroUnix is the Unix time of the zero time.Time.
var zeroUnix = time.Time{}.Unix()

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return instant{}
	}
	return instant{sec: t.Unix() - zeroUnix, nsec: int32(t.Nanosecond())}
}

// Time returns the instant in UTC, or the zero time.Time.
func (i instant) Time() time.Time {
	if i == (instant{}) {
		return time.Time{}
	}
	return time.Unix(i.sec+zeroUnix, int64(i.nsec)).UTC()
}

func (e *entry) view() Key {
	k := Key{
		KeyID:       e.id,
		Name:        e.name,
		Scope:       e.scope,
		Prefix:      e.prefix,
		CreatedAt:   e.createdAt.Time(),
		ExpiresAt:   e.expiresAt.Time(),
		RotatedFrom: e.rotatedFrom(),
		RotatedTo:   e.rotatedTo(),
		AgentID:     e.agentID,
	}
	if t := e.revokedAt(); !t.IsZero() {
		k.RevokedAt = &t
	}
	if t := e.lastUsedAt.Time(); !t.IsZero() {
		k.LastUsedAt = &t
	}
	return k
}

// ByID returns the key with the given id.
func (s *State) ByID(id string) (Key, bool) {
	e, ok := s.byID.Get(id)
	if !ok {
		return Key{}, false
	}
	return e.view(), true
}

// ByHash returns the key whose Hash is h.
func (s *State) ByHash(h [32]byte) (Key, bool) {
	e, ok := s.byHash.Get(h)
	if !ok {
		return Key{}, false
	}
	return e.view(), true
}

// Len returns the number of keys, revoked and expired ones included.
func (s *State) Len() int { return s.byID.Len() }

// List returns every key, revoked and expired ones included, newest first:
// by CreatedAt descending, then by KeyID descending (ULID ids sort by time).
func (s *State) List() []Key {
	out := make([]Key, 0, s.byID.Len())
	for _, e := range s.byID.All() {
		out = append(out, e.view())
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.KeyID, a.KeyID)
	})
	return out
}

// Clone returns a deep copy of s that shares nothing with it, for
// point-in-time replay. It costs a copy of every key; a snapshot takes a
// FrozenCopy instead.
func (s *State) Clone() *State {
	c := &State{gen: s.gen}
	for _, e := range s.byID.All() {
		cp := *e
		c.put(&cp)
	}
	return c
}

// FrozenCopy returns a copy of s in O(shards), for a snapshot to encode on
// another goroutine while s keeps applying events: the two share their
// entries, and s copies a shard of its maps on the first write to it and an
// entry before its first change (each at most once per FrozenCopy). The
// copy must only be read. FrozenCopy changes s's bookkeeping, so call it
// where no Apply and no read of s can run.
func (s *State) FrozenCopy() *State {
	s.gen++
	return &State{byID: s.byID.Clone(), byHash: s.byHash.Clone(), gen: s.gen}
}

// Apply folds one event into s. It is the one fold for live state, start-up
// replay and point-in-time replay. It checks structural sanity only and does
// not re-run command rules: revocation keeps the earliest revoked_at, use
// keeps the latest used_at. On error (wrapping ErrInconsistent or
// ErrUnknownEvent) s is unchanged.
func (s *State) Apply(ev Event) error {
	switch e := ev.(type) {
	case KeyCreated:
		if e.RotatedFrom != "" {
			return inconsistent(e, e.KeyID, "rotated_from is only allowed inside key.rotated")
		}
		n, err := s.checkCreated(e, e)
		if err != nil {
			return err
		}
		s.insert(n)
	case KeyRotated:
		old, ok := s.byID.Get(e.OldKeyID)
		if !ok {
			return inconsistent(e, e.OldKeyID, "unknown old_key_id")
		}
		if to := old.rotatedTo(); to != "" {
			return inconsistent(e, e.OldKeyID, "old key was already rotated to "+to)
		}
		if e.NewKey.RotatedFrom != e.OldKeyID {
			return inconsistent(e, e.OldKeyID, "new_key.rotated_from must equal old_key_id")
		}
		if e.OldRevokedAt.IsZero() {
			return inconsistent(e, e.OldKeyID, "old_revoked_at is missing")
		}
		n, err := s.checkCreated(e, e.NewKey)
		if err != nil {
			return err
		}
		old, _ = s.mutable(e.OldKeyID)
		old.withChange(func(c *change) {
			c.rotatedTo = n.id
			c.revokedAt = instantOf(earliest(c.revokedAt.Time(), e.OldRevokedAt.UTC()))
		})
		s.insert(n)
	case KeyRevoked:
		if e.RevokedAt.IsZero() {
			return inconsistent(e, e.KeyID, "revoked_at is missing")
		}
		k, ok := s.mutable(e.KeyID)
		if !ok {
			return inconsistent(e, e.KeyID, "unknown key_id")
		}
		k.withChange(func(c *change) {
			c.revokedAt = instantOf(earliest(c.revokedAt.Time(), e.RevokedAt.UTC()))
		})
	case KeyUsed:
		if e.UsedAt.IsZero() {
			return inconsistent(e, e.KeyID, "used_at is missing")
		}
		k, ok := s.mutable(e.KeyID)
		if !ok {
			return inconsistent(e, e.KeyID, "unknown key_id")
		}
		if t := e.UsedAt.UTC(); t.After(k.lastUsedAt.Time()) {
			k.lastUsedAt = instantOf(t)
		}
	default:
		return fmt.Errorf("keys: apply %T: %w", ev, ErrUnknownEvent)
	}
	return nil
}

// checkCreated validates the structure of c (from event ev) against s and
// returns the entry to insert.
func (s *State) checkCreated(ev Event, c KeyCreated) (*entry, error) {
	if c.KeyID == "" {
		return nil, inconsistent(ev, c.KeyID, "key_id is missing")
	}
	if _, dup := s.byID.Get(c.KeyID); dup {
		return nil, inconsistent(ev, c.KeyID, "key_id already exists")
	}
	if !c.Scope.Known() {
		return nil, inconsistent(ev, c.KeyID, fmt.Sprintf("unknown scope %q", c.Scope))
	}
	var h [32]byte
	if len(c.KeyHash) != hex.EncodedLen(len(h)) {
		return nil, inconsistent(ev, c.KeyID, "key_hash must be 64 hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(c.KeyHash)); err != nil {
		return nil, inconsistent(ev, c.KeyID, "key_hash must be 64 hex characters")
	}
	if _, dup := s.byHash.Get(h); dup {
		return nil, inconsistent(ev, c.KeyID, "key_hash already belongs to another key")
	}
	if c.CreatedAt.IsZero() || !c.ExpiresAt.After(c.CreatedAt) {
		return nil, inconsistent(ev, c.KeyID, "need created_at and expires_at after it")
	}
	n := &entry{
		id:        c.KeyID,
		name:      c.Name,
		prefix:    c.Prefix,
		agentID:   c.AgentID,
		scope:     c.Scope,
		hash:      h,
		createdAt: instantOf(c.CreatedAt),
		expiresAt: instantOf(c.ExpiresAt),
	}
	if c.RotatedFrom != "" {
		n.change = &change{rotatedFrom: c.RotatedFrom}
	}
	return n, nil
}

// insert adds the new entry e and records it as changed.
func (s *State) insert(e *entry) {
	e.gen = s.gen
	s.put(e)
	s.changed = append(s.changed, e.id)
}

// put stores e under its id and its hash.
func (s *State) put(e *entry) {
	s.byID.Set(e.id, e)
	s.byHash.Set(e)
}

func inconsistent(ev Event, keyID, problem string) error {
	return fmt.Errorf("%w: %s %q: %s", ErrInconsistent, ev.EventType(), keyID, problem)
}

// earliest returns the earlier of a and b, where a zero a means unset.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// Hashes returns the hash of every key, revoked and expired ones included,
// in no particular order.
func (s *State) Hashes() [][32]byte {
	out := make([][32]byte, 0, s.byHash.Len())
	for e := range s.byHash.All() {
		out = append(out, e.hash)
	}
	return out
}
