package keys

import (
	"encoding/binary"
	"iter"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// hashIndex finds key entries by key hash. It is a copy-on-write map keyed
// by the first 8 bytes of the hash (a 16-byte slot instead of the 40 that
// the whole hash and a pointer take: a third of a key's index memory at
// millions of keys), beside a second map by the whole hash for an entry
// whose first 8 bytes equal another's. Key hashes are SHA-256 digests of
// random keys, so that second map is almost always empty, but nothing here
// relies on it: every lookup compares the whole hash. Concurrency is
// cow.Map's.
type hashIndex struct {
	short cow.Map[uint64, *entry, shortHash]
	clash cow.Map[[32]byte, *entry, digest]
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

// Get returns the entry whose hash is h.
func (x *hashIndex) Get(h [32]byte) (*entry, bool) {
	if e, ok := x.short.Get(shortOf(h)); ok && e.hash == h {
		return e, true
	}
	if x.clash.Len() == 0 {
		return nil, false
	}
	return x.clash.Get(h)
}

// Set stores e under e.hash, replacing the entry with that hash if any.
func (x *hashIndex) Set(e *entry) {
	k := shortOf(e.hash)
	if cur, ok := x.short.Get(k); ok && cur.hash != e.hash {
		x.clash.Set(e.hash, e)
		return
	}
	x.short.Set(k, e)
}

// Len returns the number of entries.
func (x *hashIndex) Len() int { return x.short.Len() + x.clash.Len() }

// All yields every entry, in no particular order.
func (x *hashIndex) All() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for _, e := range x.short.All() {
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

// Clone returns a copy sharing every shard, as cow.Map.Clone.
func (x *hashIndex) Clone() hashIndex {
	return hashIndex{short: x.short.Clone(), clash: x.clash.Clone()}
}
