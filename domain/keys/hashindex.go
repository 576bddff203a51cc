package keys

import (
	"encoding/binary"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// digestIndex finds entries (their index in the State's table) by a key K
// through a 64-bit digest of it: a copy-on-write map by digest (an 8-byte
// key, which the garbage collector does not trace, instead of a string or
// a 32-byte hash), beside a second map by the whole key for a key whose
// digest another key in the first map already has. Nothing relies on
// digests being unique (that second map is almost always empty): every
// lookup compares the whole key. Concurrency is cow.Map's.
type digestIndex[K comparable, H cow.Hasher[K]] struct {
	primary cow.Map[uint64, uint32, digestHash]
	clash   cow.Map[K, uint32, H]
}

// idIndex finds entries by key id, through idDigest (State.digestOf).
type idIndex = digestIndex[string, cow.String]

// hashIndex finds entries by key hash, through its first 8 bytes (shortOf).
type hashIndex = digestIndex[[32]byte, digest]

// digestHash spreads digests over the shards (they are hashes already).
type digestHash struct{}

func (digestHash) Hash(d uint64) uint64 { return d }

// find returns the index of the entry of key k, whose digest is d; is
// reports whether the entry at an index is k's.
func (x *digestIndex[K, H]) find(d uint64, k K, is func(i uint32) bool) (uint32, bool) {
	if i, ok := x.primary.Get(d); ok && is(i) {
		return i, true
	}
	if x.clash.Len() == 0 {
		return 0, false
	}
	return x.clash.Get(k)
}

// add indexes the new key k, whose digest is d, at index i.
func (x *digestIndex[K, H]) add(d uint64, k K, i uint32) {
	if _, taken := x.primary.Get(d); taken {
		x.clash.Set(k, i)
		return
	}
	x.primary.Set(d, i)
}

// share returns a copy sharing every shard, as cow.Map.Clone.
func (x *digestIndex[K, H]) share() digestIndex[K, H] {
	return digestIndex[K, H]{primary: x.primary.Clone(), clash: x.clash.Clone()}
}

// clone returns a copy that shares nothing, with every key in the same
// map as in x.
func (x *digestIndex[K, H]) clone() digestIndex[K, H] {
	var c digestIndex[K, H]
	for d, i := range x.primary.All() {
		c.primary.Set(d, i)
	}
	for k, i := range x.clash.All() {
		c.clash.Set(k, i)
	}
	return c
}

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

// findID returns the index of key id in s.
func (s *State) findID(id string) (uint32, bool) {
	return s.byID.find(s.digestOf(id), id, func(i uint32) bool { return s.arena.is(s.entries.at(i).id(), id) })
}

// findHash returns the index of the key of s whose hash is h.
func (s *State) findHash(h [32]byte) (uint32, bool) {
	return s.byHash.find(shortOf(h), h, func(i uint32) bool { return s.arena.hash(s.entries.at(i)) == h })
}

// shortOf returns the digest of key hash h in a hashIndex: its first 8
// bytes.
func shortOf(h [32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// digest spreads whole key hashes over the shards: they are SHA-256
// digests, so any eight of their bytes will do.
type digest struct{}

func (digest) Hash(h [32]byte) uint64 { return shortOf(h) }
