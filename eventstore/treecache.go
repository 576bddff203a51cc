package eventstore

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// cacheLevel is the lowest tree level whose stored hashes a treeCache
// keeps: every complete subtree of at least 2^cacheLevel leaves. That is
// about 2/2^cacheLevel hashes per leaf (n/4 bytes for n leaves: 2.5 MB at
// 10M records), and leaves at most cacheLevel hashes of a proof's leaf-side
// path to read from Pebble, all within one block of 2^cacheLevel leaves
// whose stored hashes are adjacent keys.
const cacheLevel = 8

// treeCache holds one chain's stored tree hashes of level >= cacheLevel.
// The sequencer puts every such hash it writes; readers fill in the ones
// they read from Pebble (a hash written before this process started). A
// stored hash never changes once written, and a reader only asks for hashes
// inside the durable tree, so a hash put before its batch is durable is
// never read early. Safe for concurrent use.
type treeCache struct {
	mu sync.RWMutex
	// levels[l-cacheLevel][n] is the hash of the complete subtree of level
	// l at index n; the zero Hash means not loaded.
	levels [][]Hash
}

// treeCache returns chain's cache, creating it empty on first use.
func (s *Store) treeCache(chain string) *treeCache {
	if c, ok := s.trees.Load(chain); ok {
		return c.(*treeCache)
	}
	c, _ := s.trees.LoadOrStore(chain, &treeCache{})
	return c.(*treeCache)
}

func (c *treeCache) get(level int, n int64) (Hash, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l := level - cacheLevel
	if l >= len(c.levels) || n >= int64(len(c.levels[l])) {
		return Hash{}, false
	}
	h := c.levels[l][n]
	return h, h != Hash{}
}

// put stores the hash of the node at level, index n; lower levels are
// ignored.
func (c *treeCache) put(level int, n int64, h Hash) {
	if level < cacheLevel {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := level - cacheLevel
	for len(c.levels) <= l {
		c.levels = append(c.levels, nil)
	}
	if n >= int64(len(c.levels[l])) {
		c.levels[l] = slices.Grow(c.levels[l], int(n+1)-len(c.levels[l]))[:n+1]
	}
	c.levels[l][n] = h
}

// putNode is put for a compact range's node, as the sequencer visits it.
func (c *treeCache) putNode(id compact.NodeID, hash []byte) {
	if id.Level >= cacheLevel {
		c.put(int(id.Level), int64(id.Index), Hash(hash))
	}
}

// cachedReader reads chain's stored tree hashes for x/mod's tlog: the
// upper levels from the cache, the rest from Pebble with one iterator that
// seeks forward through them in index order (the hashes near a leaf are
// adjacent keys, so these seeks mostly stay in one block).
type cachedReader struct {
	db    pebble.Reader
	chain string
	cache *treeCache
}

func (r cachedReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int // positions in indexes, to read from Pebble
	for i, idx := range indexes {
		if level, n := tlog.SplitStoredHashIndex(idx); level >= cacheLevel {
			if h, ok := r.cache.get(level, n); ok {
				out[i] = tlog.Hash(h)
				continue
			}
		}
		miss = append(miss, i)
	}
	if len(miss) == 0 {
		return out, nil
	}
	slices.SortFunc(miss, func(a, b int) int {
		switch {
		case indexes[a] < indexes[b]:
			return -1
		case indexes[a] > indexes[b]:
			return 1
		}
		return 0
	})
	lo := uint64(indexes[miss[0]])
	hi := uint64(indexes[miss[len(miss)-1]])
	it, err := r.db.NewIter(&pebble.IterOptions{
		LowerBound: TreeKey(r.chain, lo),
		UpperBound: TreeKey(r.chain, hi+1),
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: read tree hashes of %s: %w", r.chain, err)
	}
	key := make([]byte, 0, 1+len(r.chain)+1+8)
	for _, i := range miss {
		idx := indexes[i]
		key = appendTreeKey(key[:0], r.chain, uint64(idx))
		if !it.SeekGE(key) || string(it.Key()) != string(key) {
			err := it.Error()
			_ = it.Close()
			if err != nil {
				return nil, fmt.Errorf("eventstore: read tree hash %d of %s: %w", idx, r.chain, err)
			}
			return nil, fmt.Errorf("%w: chain %s has no stored tree hash %d", ErrTreeMismatch, r.chain, idx)
		}
		v := it.Value()
		if len(v) != HashSize {
			_ = it.Close()
			return nil, fmt.Errorf("%w: chain %s tree hash %d has %d bytes", ErrTreeMismatch, r.chain, idx, len(v))
		}
		copy(out[i][:], v)
		if level, n := tlog.SplitStoredHashIndex(idx); level >= cacheLevel {
			r.cache.put(level, n, Hash(out[i]))
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("eventstore: read tree hashes of %s: %w", r.chain, err)
	}
	return out, nil
}

// hashes returns the reader of chain's stored tree hashes that the proof
// and root methods use.
func (s *Store) hashes(chain string) tlog.HashReader {
	return cachedReader{db: s.db, chain: chain, cache: s.treeCache(chain)}
}
