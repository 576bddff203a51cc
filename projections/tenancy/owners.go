package tenancy

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// ownerShards is the number of shards of an ownerIndex: enough that
// authentications on every core rarely meet on one lock.
const ownerShards = 64

// ownerIndex maps every key hash to the chain that holds the key. It is
// safe for concurrent use. Its slots are a key hash and a 4-byte chain
// number (36 bytes, against ~150 for a sync.Map entry with boxed key and
// value), since a deployment may hold millions of keys. The zero value is
// empty and ready to use.
type ownerIndex struct {
	shards [ownerShards]struct {
		mu sync.RWMutex
		m  map[[32]byte]uint32
	}
	// chainsMu serializes additions to chains, an append-only list of
	// chain ids indexed by chain number and read without locks.
	chainsMu sync.Mutex
	chains   atomic.Pointer[[]string]
}

func (o *ownerIndex) shard(h [32]byte) int {
	return int(binary.LittleEndian.Uint64(h[:8]) % ownerShards)
}

// number returns the chain number of chain, giving it one if it has none.
func (o *ownerIndex) number(chain string) uint32 {
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

// Store records that chain holds the key with hash h.
func (o *ownerIndex) Store(h [32]byte, chain string) {
	n := o.number(chain)
	s := &o.shards[o.shard(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[32]byte]uint32)
	}
	s.m[h] = n
}

// LoadOrStore returns the chain recorded for h and true, or records chain
// for h and returns it and false.
func (o *ownerIndex) LoadOrStore(h [32]byte, chain string) (string, bool) {
	n := o.number(chain)
	s := &o.shards[o.shard(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.m[h]; ok {
		return (*o.chains.Load())[prev], true
	}
	if s.m == nil {
		s.m = make(map[[32]byte]uint32)
	}
	s.m[h] = n
	return chain, false
}

// Load returns the chain that holds the key with hash h.
func (o *ownerIndex) Load(h [32]byte) (string, bool) {
	s := &o.shards[o.shard(h)]
	s.mu.RLock()
	n, ok := s.m[h]
	s.mu.RUnlock()
	if !ok {
		return "", false
	}
	return (*o.chains.Load())[n], true
}
