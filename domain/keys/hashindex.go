package keys

import (
	"encoding/binary"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// idIndex finds entries (their index in the State's table) by key id. It
// is a copy-on-write map keyed by a 64-bit digest of the id (an 8-byte key
// instead of a string, whose pointer the garbage collector would trace),
// beside a second map by the id itself for a key whose digest equals that
// of a key already in the first map. The digest is not a cryptographic
// hash, so that second map is almost always empty, but nothing here relies
// on it: every lookup compares the whole id. Concurrency is cow.Map's.
type idIndex struct {
	primary cow.Map[uint64, uint32, digestHash]
	clash   cow.Map[string, uint32, cow.String]
}

// digestHash spreads id digests over the shards (they are hashes already).
type digestHash struct{}

func (digestHash) Hash(d uint64) uint64 { return d }

// idDigest returns the 64-bit FNV-1a hash of id: the same on every run,
// as the domain needs.
func idDigest(id string) uint64 {
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

// find returns the index of key id in s.
func (x *idIndex) find(s *State, id string) (uint32, bool) {
	if i, ok := x.primary.Get(s.digestOf(id)); ok && s.arena.is(s.entries.at(i).id(), id) {
		return i, true
	}
	if x.clash.Len() == 0 {
		return 0, false
	}
	return x.clash.Get(id)
}

// add indexes the new key id at index i.
func (x *idIndex) add(s *State, id string, i uint32) {
	d := s.digestOf(id)
	if _, taken := x.primary.Get(d); taken {
		x.clash.Set(id, i)
		return
	}
	x.primary.Set(d, i)
}

// share returns a copy sharing every shard, as cow.Map.Clone.
func (x *idIndex) share() idIndex {
	return idIndex{primary: x.primary.Clone(), clash: x.clash.Clone()}
}

// clone returns a copy that shares nothing, with every key in the same
// map as in x.
func (x *idIndex) clone() idIndex {
	var c idIndex
	for d, i := range x.primary.All() {
		c.primary.Set(d, i)
	}
	for id, i := range x.clash.All() {
		c.clash.Set(id, i)
	}
	return c
}

// hashIndex finds entries (their index in the State's table) by key
// hash. It is a copy-on-write map keyed by the first 8 bytes of the hash
// (a 16-byte slot instead of the 40 that the whole hash and an index
// take), beside a second map by the whole hash for a key whose first 8
// bytes equal another's. Key hashes are SHA-256 digests of random keys, so
// that second map is almost always empty, but nothing here relies on it:
// every lookup compares the whole hash. Concurrency is cow.Map's.
type hashIndex struct {
	short cow.Map[uint64, uint32, shortHash]
	clash cow.Map[[32]byte, uint32, digest]
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

// find returns the index of the key of s whose hash is h.
func (x *hashIndex) find(s *State, h [32]byte) (uint32, bool) {
	if i, ok := x.short.Get(shortOf(h)); ok && s.arena.hash(s.entries.at(i)) == h {
		return i, true
	}
	if x.clash.Len() == 0 {
		return 0, false
	}
	return x.clash.Get(h)
}

// add indexes the new key of hash h at index i.
func (x *hashIndex) add(h [32]byte, i uint32) {
	k := shortOf(h)
	if _, taken := x.short.Get(k); taken {
		x.clash.Set(h, i)
		return
	}
	x.short.Set(k, i)
}

// share returns a copy sharing every shard, as cow.Map.Clone.
func (x *hashIndex) share() hashIndex {
	return hashIndex{short: x.short.Clone(), clash: x.clash.Clone()}
}

// clone returns a copy that shares nothing, with every key in the same map
// as in x.
func (x *hashIndex) clone() hashIndex {
	var c hashIndex
	for k, i := range x.short.All() {
		c.short.Set(k, i)
	}
	for h, i := range x.clash.All() {
		c.clash.Set(h, i)
	}
	return c
}
