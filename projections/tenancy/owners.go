package tenancy

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
)

// ownerShards is the number of shards of an ownerIndex: enough that
// authentications on every core rarely meet on one lock.
const ownerShards = 64

// sharedShort, as an ownerIndex value, says that keys of more than one
// chain have hashes starting with the same 8 bytes.
const sharedShort = math.MaxUint32

// ownerIndex routes a key hash to the chain that holds the key. A
// deployment may hold millions of keys, so its slots are small: the first
// 8 bytes of the hash and a 4-byte chain number (12 bytes, against ~150 for
// a sync.Map entry with the whole hash and the chain id boxed). It does not
// prove that the chain holds the key: that chain's Ledger, which indexes
// whole hashes, decides. Where keys of two chains share their first 8 hash
// bytes (key hashes are SHA-256 digests of random keys: about one chance
// in 10^7 at a million keys) the index says so, and the caller asks each
// chain. It is safe for concurrent use; the zero value is empty and ready.
type ownerIndex struct {
	shards [ownerShards]struct {
		mu sync.RWMutex
		m  map[uint64]uint32 // short hash -> chain number or sharedShort
	}
	// chainsMu serializes additions to chains, an append-only list of
	// chain ids indexed by chain number and read without locks.
	chainsMu sync.Mutex
	chains   atomic.Pointer[[]string]
}

func shortOf(h [32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// Number returns the chain number of chain, giving it one if it has none.
// It scans the chains: call it once per chain, not per key.
func (o *ownerIndex) Number(chain string) uint32 {
	if p := o.chains.Load(); p != nil {
		for i, c := range *p {
			if c == chain {
				return uint32(i)
			}
		}
	}
	o.chainsMu.Lock()
	defer o.chainsMu.Unlock()
	var chains []string
	if p := o.chains.Load(); p != nil {
		chains = *p
	}
	for i, c := range chains {
		if c == chain {
			return uint32(i)
		}
	}
	next := append(chains[:len(chains):len(chains)], chain)
	o.chains.Store(&next)
	return uint32(len(next) - 1)
}

// Store records that the chain numbered n (Number) holds the key with hash
// h. It reports whether the first 8 bytes of h were already recorded for
// another chain (the caller may then check whether that chain holds h
// itself).
func (o *ownerIndex) Store(h [32]byte, n uint32) (clash bool) {
	k := shortOf(h)
	s := &o.shards[k%ownerShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[uint64]uint32)
	}
	prev, ok := s.m[k]
	switch {
	case !ok:
		s.m[k] = n
	case prev != n:
		s.m[k] = sharedShort
		return true
	}
	return false
}

// Load returns the chain that may hold the key with hash h, or shared when
// keys of several chains start with the same 8 hash bytes (ask each), or
// ok false when no chain holds it.
func (o *ownerIndex) Load(h [32]byte) (chain string, shared, ok bool) {
	k := shortOf(h)
	s := &o.shards[k%ownerShards]
	s.mu.RLock()
	n, ok := s.m[k]
	s.mu.RUnlock()
	switch {
	case !ok:
		return "", false, false
	case n == sharedShort:
		return "", true, true
	}
	return (*o.chains.Load())[n], false, true
}
