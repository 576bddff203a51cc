package keys

import (
	"encoding/binary"
	"iter"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// idIndex finds entries by key id. It is a copy-on-write map keyed by a
// 64-bit digest of the id (an 8-byte key instead of a string, whose
// pointer the garbage collector would trace), beside a second map by the
// id itself for a key whose digest equals that of a key already in the
// first map. The digest is not a cryptographic hash, so that second map
// is almost always empty, but nothing here relies on it: every lookup
// compares the whole id. An entry never moves between the two maps: the
// first key of a digest keeps it. Concurrency is cow.Map's.
type idIndex struct {
	primary cow.Map[uint64, entry, digestHash]
	clash   cow.Map[string, entry, cow.String]
}

// digestHash spreads id digests over the shards (they are hashes already).
type digestHash struct{}

func (digestHash) Hash(d uint64) uint64 { return d }

// idDigest returns the 64-bit FNV-1a hash of id (given as a string or as
// bytes): the same on every run, as the domain needs.
func idDigest[T string | []byte](id T) uint64 {
	const offset, prime = 0xcbf29ce484222325, 0x100000001b3
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	return h
}

// digestOf returns the digest of id in s.
func (s *State) digestOf(id string) uint64 {
	if s.digest != nil {
		return s.digest(id)
	}
	return idDigest(id)
}

// digestOfBytes is digestOf for an id given as bytes.
func (s *State) digestOfBytes(id []byte) uint64 {
	if s.digest != nil {
		return s.digest(string(id))
	}
	return idDigest(id)
}

// get returns the entry of key id in s.
func (x *idIndex) get(s *State, id string) (entry, bool) {
	if e, ok := x.primary.Get(s.digestOf(id)); ok && s.arena.is(e.id(), id) {
		return e, true
	}
	if x.clash.Len() == 0 {
		return entry{}, false
	}
	return x.clash.Get(id)
}

// getRef returns the entry whose id is at id in s's arena.
func (x *idIndex) getRef(s *State, id str) (entry, bool) {
	b := s.arena.bytes(id)
	if e, ok := x.primary.Get(s.digestOfBytes(b)); ok && e.id() == id {
		return e, true
	}
	return x.clash.Get(string(b))
}

// add stores the entry e of a new key id and returns the digest of id and
// whether e went to the primary map.
func (x *idIndex) add(s *State, id string, e entry) (uint64, bool) {
	d := s.digestOf(id)
	if _, taken := x.primary.Get(d); taken {
		x.clash.Set(id, e)
		return d, false
	}
	x.primary.Set(d, e)
	return d, true
}

// set replaces the entry of key id, which s has, with e.
func (x *idIndex) set(s *State, id string, e entry) {
	d := s.digestOf(id)
	if cur, ok := x.primary.Get(d); ok && s.arena.is(cur.id(), id) {
		x.primary.Set(d, e)
		return
	}
	x.clash.Set(id, e)
}

func (x *idIndex) len() int { return x.primary.Len() + x.clash.Len() }

// all yields every entry, in no particular order.
func (x *idIndex) all() iter.Seq[entry] {
	return func(yield func(entry) bool) {
		for _, e := range x.primary.All() {
			if !yield(e) {
				return
			}
		}
		for _, e := range x.clash.All() {
			if !yield(e) {
				return
			}
		}
	}
}

// share returns a copy sharing every shard, as cow.Map.Clone.
func (x *idIndex) share() idIndex {
	return idIndex{primary: x.primary.Clone(), clash: x.clash.Clone()}
}

// clone returns a copy that shares nothing, with every entry in the same
// map as in x.
func (x *idIndex) clone() idIndex {
	var c idIndex
	for d, e := range x.primary.All() {
		c.primary.Set(d, e)
	}
	for id, e := range x.clash.All() {
		c.clash.Set(id, e)
	}
	return c
}

// hashIndex finds key entries by key hash. It is a copy-on-write map from
// the first 8 bytes of the hash to the digest of the key's id (a 16-byte
// slot instead of the 40 or more that the whole hash and an entry take),
// beside a second map from the whole hash to the id, for a key whose
// first 8 bytes equal another's or whose entry is not in idIndex.primary.
// Key hashes are SHA-256 digests of random keys, so that second map is
// almost always empty, but nothing here relies on it: every lookup
// compares the whole hash. Concurrency is cow.Map's.
type hashIndex struct {
	short cow.Map[uint64, uint64, shortHash]
	clash cow.Map[[32]byte, string, digest]
}

// shortOf returns the key of h in hashIndex.short.
func shortOf(h [32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// shortHash spreads short hashes over the shards (they are already digest
// bytes).
type shortHash struct{}

func (shortHash) Hash(k uint64) uint64 { return k }

// digest spreads whole key hashes over the shards: they are SHA-256
// digests, so any eight of their bytes will do.
type digest struct{}

func (digest) Hash(h [32]byte) uint64 { return shortOf(h) }

// get returns the entry of s whose hash is h.
func (x *hashIndex) get(s *State, h [32]byte) (entry, bool) {
	if d, ok := x.short.Get(shortOf(h)); ok {
		if e, ok := s.byID.primary.Get(d); ok && s.arena.hash(&e) == h {
			return e, true
		}
	}
	if x.clash.Len() == 0 {
		return entry{}, false
	}
	id, ok := x.clash.Get(h)
	if !ok {
		return entry{}, false
	}
	return s.byID.get(s, id)
}

// add indexes the new key id of hash h, whose id digest is d and whose
// entry went to idIndex.primary if primary.
func (x *hashIndex) add(h [32]byte, id string, d uint64, primary bool) {
	k := shortOf(h)
	if _, taken := x.short.Get(k); primary && !taken {
		x.short.Set(k, d)
		return
	}
	x.clash.Set(h, id)
}

// share returns a copy sharing every shard, as cow.Map.Clone.
func (x *hashIndex) share() hashIndex {
	return hashIndex{short: x.short.Clone(), clash: x.clash.Clone()}
}

// clone returns a copy that shares nothing, with every key in the same map
// as in x.
func (x *hashIndex) clone() hashIndex {
	var c hashIndex
	for k, d := range x.short.All() {
		c.short.Set(k, d)
	}
	for h, id := range x.clash.All() {
		c.clash.Set(h, id)
	}
	return c
}
