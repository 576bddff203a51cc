// Package cow provides Map, a hash map whose copy costs O(shards), not
// O(entries): the entries live in Shards shards, a Clone shares every shard
// with the original, and the first write to a shared shard, in either map,
// copies that shard only. It is how the domain's projections let a snapshot
// be taken under the write lock in constant time and encoded on another
// goroutine while the live state keeps changing.
//
// Map copies its shards, not its values. Values that are pointers and are
// changed in place must themselves be copied before their first change
// after a Clone (the projections stamp each value with the generation it
// was copied in; see decision.Sessions.mutable). Values without pointers,
// changed by a Set, need nothing of the kind, and a Map whose keys and
// values hold no pointers is not traced by the garbage collector entry by
// entry (keys.State indexes its keys so).
//
// A Map is not safe for concurrent use: Get, Len and All may run
// concurrently with each other, but not with Set, Delete or Clone, which all
// write to the map (Clone to its record of which shards it owns). A clone,
// on the other hand, is independent of its original: one goroutine may read
// a clone while another writes to the original.
package cow

import (
	"iter"
	"maps"
)

// shardBits is log2 of Shards.
const shardBits = 8

// Shards is the number of shards of a Map, and so the cost of a Clone.
// With 256 shards a Clone copies 256 map pointers; at 1M entries the first
// write to a shard after a Clone copies about 4k entries (BenchmarkFrozenCopy
// in package domain measures what the projections' copies cost).
const Shards = 1 << shardBits

// Hasher spreads keys over the shards of a Map. Hash must be a pure
// function of its argument (the domain is deterministic: no seeded hashes).
// Implementations are zero-size types, so that a Map needs no function
// value and compares with reflect.DeepEqual like its contents.
type Hasher[K any] interface {
	Hash(K) uint64
}

// Map is a sharded copy-on-write hash map from K to V. The zero Map is
// empty and ready to use. Do not copy a Map by assignment while both copies
// are used: take a Clone.
type Map[K comparable, V any, H Hasher[K]] struct {
	shards [Shards]map[K]V
	// owned has bit i set when shards[i] belongs to this map alone and
	// may be written in place.
	owned [Shards / 64]uint64
	n     int
}

// shard returns the index of the shard of k.
func (m *Map[K, V, H]) shard(k K) int {
	var h H
	// Mix the hash so that any of its bits may decide the shard.
	x := h.Hash(k) * 0x9e3779b97f4a7c15
	return int(x >> (64 - shardBits))
}

// Get returns the value of k.
func (m *Map[K, V, H]) Get(k K) (V, bool) {
	v, ok := m.shards[m.shard(k)][k]
	return v, ok
}

// Len returns the number of entries.
func (m *Map[K, V, H]) Len() int { return m.n }

// writable returns shard i for writing, copying it first if it is shared.
func (m *Map[K, V, H]) writable(i int) map[K]V {
	word, bit := i/64, uint64(1)<<(i%64)
	if m.owned[word]&bit == 0 {
		c := maps.Clone(m.shards[i]) // a copy of the table, far cheaper than inserting
		if c == nil {
			c = make(map[K]V)
		}
		m.shards[i] = c
		m.owned[word] |= bit
	}
	return m.shards[i]
}

// Set sets the value of k to v.
func (m *Map[K, V, H]) Set(k K, v V) {
	s := m.writable(m.shard(k))
	before := len(s)
	s[k] = v
	m.n += len(s) - before
}

// Delete removes k, if present.
func (m *Map[K, V, H]) Delete(k K) {
	i := m.shard(k)
	if _, ok := m.shards[i][k]; !ok {
		return
	}
	delete(m.writable(i), k)
	m.n--
}

// All returns every entry, in no particular order. The map must not change
// while the sequence runs.
func (m *Map[K, V, H]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// Clone returns a copy of m in O(Shards): the two share every shard until
// one of them writes to it. Clone writes to m (it marks m's shards shared),
// so it must not run concurrently with any other use of m.
func (m *Map[K, V, H]) Clone() Map[K, V, H] {
	clear(m.owned[:])
	return Map[K, V, H]{shards: m.shards, n: m.n}
}

// String hashes strings with FNV-1a, eight bytes at a time: cheap for the
// short identifiers the domain keys its maps by, and the same on every run.
type String struct{}

// Hash implements Hasher.
func (String) Hash(s string) uint64 {
	const prime = 0x100000001b3
	h := uint64(0xcbf29ce484222325) ^ uint64(len(s))
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * prime
		h ^= h >> 29
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * prime
	}
	return h
}
