package keys

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"iter"
	"slices"
	"time"
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
//
// A State may hold millions of keys, so it holds them without Go pointers:
// each key is an entry value in entries, its strings and hash bytes in
// arena, and the indexes map integers to integers. The garbage collector
// then marks a State of a million keys about as fast as one of a thousand.
type State struct {
	// entries holds every key, byID and byHash their indexes in it. All
	// three are copy-on-write, so that FrozenCopy costs O(shards) (and
	// keys/8192 words for entries; the first write after it copies the
	// list of pages, keys/128 words) and a write to the State, a set of a
	// changed entry, never shows in a frozen copy.
	entries table
	byID    idIndex
	byHash  hashIndex
	arena   arena
	// digest, if set, replaces idDigest as the digest of key ids (tests
	// set it to make ids clash; see export_test.go).
	digest func(string) uint64
	// changed lists the ids of keys Apply created or changed since the
	// last TakeChanged, so that copies of keys kept elsewhere (the
	// Ledger's authentication cache) follow every event without knowing
	// event types. Every case of Apply records the ids it reaches.
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

// entry is the stored form of a key. It holds no Go pointer (so that the
// table of entries is not traced by the garbage collector) and is stored
// by value: changing a key is storing a changed copy. Its strings are in
// the State's arena: the hash, id, name, prefix and agent id of a key
// together, from rec (a record written once, when the key is made); each
// rotation id is the id in the record of the key at the other end of the
// rotation when the State has that key, else a copy. Its layout is chosen
// for size, since a store may hold millions of keys (100 bytes).
type entry struct {
	rec                                         loc // hash [32]byte, then id, name, prefix, agentID
	idLen, nameLen, prefixLen, agentLen         uint32
	rotatedFrom, rotatedTo                      str     // zero: not rotated
	createdAt, expiresAt, lastUsedAt, revokedAt instant // lastUsedAt zero: never recorded; revokedAt zero: not revoked
	scope                                       scopeCode
}

// hashLen is the size of a key hash, the start of every record.
const hashLen = 32

func (e *entry) id() str {
	return str{loc: loc{chunk: e.rec.chunk, off: e.rec.off + hashLen}, n: e.idLen}
}

// text returns where the id, name, prefix and agent id are, together.
func (e *entry) text() str {
	return str{loc: loc{chunk: e.rec.chunk, off: e.rec.off + hashLen}, n: e.idLen + e.nameLen + e.prefixLen + e.agentLen}
}

func (e *entry) name() str {
	x := e.id()
	return str{loc: loc{chunk: x.chunk, off: x.off + e.idLen}, n: e.nameLen}
}

func (e *entry) prefix() str {
	x := e.name()
	return str{loc: loc{chunk: x.chunk, off: x.off + e.nameLen}, n: e.prefixLen}
}

func (e *entry) agentID() str {
	x := e.prefix()
	return str{loc: loc{chunk: x.chunk, off: x.off + e.prefixLen}, n: e.agentLen}
}

// hash returns the key hash of e, from arena a.
func (a *arena) hash(e *entry) [32]byte {
	return [32]byte(a.chunks[e.rec.chunk][e.rec.off:])
}

// fields is a key as plain values: what a snapshot holds for it, and what
// an entry is made from (State.newEntry).
type fields struct {
	id, name, prefix, agentID string
	rotatedFrom, rotatedTo    string
	scope                     Scope
	hash                      [32]byte
	createdAt, expiresAt      time.Time
	revokedAt, lastUsedAt     time.Time
}

// newEntry writes the strings of f to the arena and returns its entry. The
// rotation ids point at the id of the key they name when s has it, so that
// a rotation adds no bytes. f.scope must be known.
func (s *State) newEntry(f *fields) entry {
	at, b := s.arena.alloc(hashLen + len(f.id) + len(f.name) + len(f.prefix) + len(f.agentID))
	n := copy(b, f.hash[:])
	n += copy(b[n:], f.id)
	n += copy(b[n:], f.name)
	n += copy(b[n:], f.prefix)
	copy(b[n:], f.agentID)
	scope, _ := scopeCodeOf(f.scope)
	return entry{
		rec:         at,
		idLen:       uint32(len(f.id)),
		nameLen:     uint32(len(f.name)),
		prefixLen:   uint32(len(f.prefix)),
		agentLen:    uint32(len(f.agentID)),
		rotatedFrom: s.idRef(f.rotatedFrom),
		rotatedTo:   s.idRef(f.rotatedTo),
		createdAt:   instantOf(f.createdAt),
		expiresAt:   instantOf(f.expiresAt),
		lastUsedAt:  instantOf(f.lastUsedAt),
		revokedAt:   instantOf(f.revokedAt),
		scope:       scope,
	}
}

// idRef returns id in the arena: the id of key id if s has it, else a copy.
func (s *State) idRef(id string) str {
	if id == "" {
		return str{}
	}
	if e, ok := s.get(id); ok {
		return e.id()
	}
	return s.arena.intern(id)
}

// get returns the entry of key id, to read only.
func (s *State) get(id string) (*entry, bool) {
	i, ok := s.findID(id)
	if !ok {
		return nil, false
	}
	return s.entries.at(i), true
}

// all yields every entry, to read only, in order of creation.
func (s *State) all() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for i := range uint32(s.entries.n) {
			if !yield(s.entries.at(i)) {
				return
			}
		}
	}
}

// fields returns e as plain values.
func (s *State) fields(e *entry) fields {
	k := s.view(e)
	f := fields{
		id: k.KeyID, name: k.Name, prefix: k.Prefix, agentID: k.AgentID,
		rotatedFrom: k.RotatedFrom, rotatedTo: k.RotatedTo, scope: k.Scope,
		hash: s.arena.hash(e), createdAt: k.CreatedAt, expiresAt: k.ExpiresAt,
	}
	if k.RevokedAt != nil {
		f.revokedAt = *k.RevokedAt
	}
	if k.LastUsedAt != nil {
		f.lastUsedAt = *k.LastUsedAt
	}
	return f
}

// scopeCode is a Scope in one byte; the zero scopeCode is no scope.
type scopeCode uint8

// scopes lists the scopes by scopeCode.
var scopes = [...]Scope{"", ScopeAdmin, ScopeRead, ScopeEvaluate, ScopeSuperadmin}

// scopeCodeOf returns the code of sc, and whether sc is known.
func scopeCodeOf(sc Scope) (scopeCode, bool) {
	if !sc.Known() {
		return 0, false
	}
	i := slices.Index(scopes[:], sc)
	return scopeCode(i), true
}

// Scope returns the scope c stands for.
func (c scopeCode) Scope() Scope { return scopes[c] }

// revoked returns when e stops (or stopped) working; zero if never revoked.
func (e *entry) revoked() time.Time { return e.revokedAt.Time() }

// instant is a time.Time in UTC without its location pointer: seconds since
// time.Time's own epoch (year 1) and nanoseconds, covering every time.Time
// exactly, in 12 bytes (the seconds as two 32-bit words, so that an entry
// is aligned to 4 bytes and holds four instants in 48). The zero instant is
// the zero time.Time.
type instant struct {
	sec  [2]uint32 // seconds since year 1 (time.Time's own epoch), so that zero means unset; low word first
	nsec uint32
}

// zeroUnix is the Unix time of the zero time.Time.
var zeroUnix = time.Time{}.Unix()

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return instant{}
	}
	sec := uint64(t.Unix() - zeroUnix)
	return instant{sec: [2]uint32{uint32(sec), uint32(sec >> 32)}, nsec: uint32(t.Nanosecond())}
}

// Time returns the instant in UTC, or the zero time.Time.
func (i instant) Time() time.Time {
	if i == (instant{}) {
		return time.Time{}
	}
	sec := int64(uint64(i.sec[1])<<32 | uint64(i.sec[0]))
	return time.Unix(sec+zeroUnix, int64(i.nsec)).UTC()
}

// view returns e as a Key. Its id, name, prefix and agent id share one
// allocation.
func (s *State) view(e *entry) Key {
	text := s.arena.string(e.text())
	id, rest := text[:e.idLen], text[e.idLen:]
	name, rest := rest[:e.nameLen], rest[e.nameLen:]
	prefix, agentID := rest[:e.prefixLen], rest[e.prefixLen:]
	k := Key{
		KeyID:       id,
		Name:        name,
		Scope:       e.scope.Scope(),
		Prefix:      prefix,
		CreatedAt:   e.createdAt.Time(),
		ExpiresAt:   e.expiresAt.Time(),
		RotatedFrom: s.arena.string(e.rotatedFrom),
		RotatedTo:   s.arena.string(e.rotatedTo),
		AgentID:     agentID,
	}
	if t := e.revoked(); !t.IsZero() {
		k.RevokedAt = &t
	}
	if t := e.lastUsedAt.Time(); !t.IsZero() {
		k.LastUsedAt = &t
	}
	return k
}

// ByID returns the key with the given id.
func (s *State) ByID(id string) (Key, bool) {
	e, ok := s.get(id)
	if !ok {
		return Key{}, false
	}
	return s.view(e), true
}

// ByHash returns the key whose Hash is h.
func (s *State) ByHash(h [32]byte) (Key, bool) {
	i, ok := s.findHash(h)
	if !ok {
		return Key{}, false
	}
	return s.view(s.entries.at(i)), true
}

// Len returns the number of keys, revoked and expired ones included.
func (s *State) Len() int { return s.entries.n }

// List returns every key, revoked and expired ones included, newest first:
// by CreatedAt descending, then by KeyID descending (ULID ids sort by time).
func (s *State) List() []Key {
	out := make([]Key, 0, s.entries.n)
	for e := range s.all() {
		out = append(out, s.view(e))
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
	return &State{entries: s.entries.clone(), byID: s.byID.clone(), byHash: s.byHash.clone(), arena: s.arena.clone(), digest: s.digest}
}

// FrozenCopy returns a copy of s in O(shards), for a snapshot to encode on
// another goroutine while s keeps applying events: the two share their
// entries' pages, their maps' shards and their arena, s copies a page or a
// shard on the first write to it (at most once per FrozenCopy), and
// neither writes arena bytes that the other may read. The copy must only be read. FrozenCopy changes
// s's bookkeeping, so call it where no Apply and no read of s can run.
func (s *State) FrozenCopy() *State {
	return &State{entries: s.entries.share(), byID: s.byID.share(), byHash: s.byHash.share(), arena: s.arena.share(), digest: s.digest}
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
		f, err := s.checkCreated(e, e)
		if err != nil {
			return err
		}
		s.insert(&f)
	case KeyRotated:
		i, ok := s.findID(e.OldKeyID)
		if !ok {
			return inconsistent(e, e.OldKeyID, "unknown old_key_id")
		}
		old := *s.entries.at(i)
		if old.rotatedTo != (str{}) {
			return inconsistent(e, e.OldKeyID, "old key was already rotated to "+s.arena.string(old.rotatedTo))
		}
		if e.NewKey.RotatedFrom != e.OldKeyID {
			return inconsistent(e, e.OldKeyID, "new_key.rotated_from must equal old_key_id")
		}
		if e.OldRevokedAt.IsZero() {
			return inconsistent(e, e.OldKeyID, "old_revoked_at is missing")
		}
		f, err := s.checkCreated(e, e.NewKey)
		if err != nil {
			return err
		}
		n := s.add(&f) // n.rotatedFrom is old's id
		old.rotatedTo = n.id()
		old.revokedAt = instantOf(earliest(old.revoked(), e.OldRevokedAt.UTC()))
		s.entries.set(i, old)
		s.changed = append(s.changed, e.OldKeyID, e.NewKey.KeyID)
	case KeyRevoked:
		if e.RevokedAt.IsZero() {
			return inconsistent(e, e.KeyID, "revoked_at is missing")
		}
		i, ok := s.findID(e.KeyID)
		if !ok {
			return inconsistent(e, e.KeyID, "unknown key_id")
		}
		k := *s.entries.at(i)
		if at := instantOf(earliest(k.revoked(), e.RevokedAt.UTC())); at != k.revokedAt {
			k.revokedAt = at
			s.entries.set(i, k)
		}
		s.changed = append(s.changed, e.KeyID)
	case KeyUsed:
		if e.UsedAt.IsZero() {
			return inconsistent(e, e.KeyID, "used_at is missing")
		}
		i, ok := s.findID(e.KeyID)
		if !ok {
			return inconsistent(e, e.KeyID, "unknown key_id")
		}
		if t := e.UsedAt.UTC(); t.After(s.entries.at(i).lastUsedAt.Time()) {
			k := *s.entries.at(i)
			k.lastUsedAt = instantOf(t)
			s.entries.set(i, k)
		}
		s.changed = append(s.changed, e.KeyID)
	default:
		return fmt.Errorf("keys: apply %T: %w", ev, ErrUnknownEvent)
	}
	return nil
}

// checkCreated validates the structure of c (from event ev) against s and
// returns the key to insert.
func (s *State) checkCreated(ev Event, c KeyCreated) (fields, error) {
	if c.KeyID == "" {
		return fields{}, inconsistent(ev, c.KeyID, "key_id is missing")
	}
	if _, dup := s.findID(c.KeyID); dup {
		return fields{}, inconsistent(ev, c.KeyID, "key_id already exists")
	}
	if !c.Scope.Known() {
		return fields{}, inconsistent(ev, c.KeyID, fmt.Sprintf("unknown scope %q", c.Scope))
	}
	var h [32]byte
	if len(c.KeyHash) != hex.EncodedLen(len(h)) {
		return fields{}, inconsistent(ev, c.KeyID, "key_hash must be 64 hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(c.KeyHash)); err != nil {
		return fields{}, inconsistent(ev, c.KeyID, "key_hash must be 64 hex characters")
	}
	if _, dup := s.findHash(h); dup {
		return fields{}, inconsistent(ev, c.KeyID, "key_hash already belongs to another key")
	}
	if c.CreatedAt.IsZero() || !c.ExpiresAt.After(c.CreatedAt) {
		return fields{}, inconsistent(ev, c.KeyID, "need created_at and expires_at after it")
	}
	return fields{
		id:          c.KeyID,
		name:        c.Name,
		prefix:      c.Prefix,
		agentID:     c.AgentID,
		rotatedFrom: c.RotatedFrom,
		scope:       c.Scope,
		hash:        h,
		createdAt:   c.CreatedAt,
		expiresAt:   c.ExpiresAt,
	}, nil
}

// insert adds the new key f, whose id and hash s does not have, records it
// as changed and returns its entry.
func (s *State) insert(f *fields) entry {
	e := s.add(f)
	s.changed = append(s.changed, f.id)
	return e
}

// add adds the new key f, whose id and hash s does not have, under both.
func (s *State) add(f *fields) entry {
	e := s.newEntry(f)
	i := s.entries.add(e)
	s.byID.add(s.digestOf(f.id), f.id, i)
	s.byHash.add(shortOf(f.hash), f.hash, i)
	return e
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
	out := make([][32]byte, 0, s.entries.n)
	for e := range s.all() {
		out = append(out, s.arena.hash(e))
	}
	return out
}
