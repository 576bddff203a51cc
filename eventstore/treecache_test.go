package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// TestCachedReaderMatchesGets checks that cachedReader, with a cache the
// writes filled (as the sequencer does) and with an empty one that fills
// as it reads (a restarted store), gives the same roots and proofs as one
// Get per hash, at random sizes and leaves.
func TestCachedReaderMatchesGets(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(seed(t), 2))
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer db.Close()
	n := uint64(3000 + rng.IntN(3000))
	warm := &treeCache{}
	tree := treeFactory.NewEmptyRange(0)
	b := db.NewBatch()
	var leaf [8]byte
	for i := range n {
		binary.BigEndian.PutUint64(leaf[:], i)
		h := sha256.Sum256(leaf[:])
		require.NoError(t, tree.Append(h[:], func(id compact.NodeID, hash []byte) {
			require.NoError(t, b.Set(TreeKey(DefaultChain, storedIndex(id)), hash, nil))
			warm.putNode(id, hash)
		}))
	}
	require.NoError(t, b.Commit(pebble.Sync))
	want := hashReader{db: db, chain: DefaultChain}
	readers := map[string]tlog.HashReader{
		"warm": cachedReader{db: db, chain: DefaultChain, cache: warm},
		"lazy": cachedReader{db: db, chain: DefaultChain, cache: &treeCache{}},
	}
	for range 300 {
		size := 1 + rng.Int64N(int64(n))
		idx := rng.Int64N(size)
		from := 1 + rng.Int64N(size)
		root, err := tlog.TreeHash(size, want)
		require.NoError(t, err)
		p, err := tlog.ProveRecord(size, idx, want)
		require.NoError(t, err)
		c, err := tlog.ProveTree(size, from, want)
		require.NoError(t, err)
		for name, r := range readers {
			got, err := tlog.TreeHash(size, r)
			require.NoError(t, err, name)
			require.Equal(t, root, got, "%s: root at %d", name, size)
			gp, err := tlog.ProveRecord(size, idx, r)
			require.NoError(t, err, name)
			require.Equal(t, p, gp, "%s: leaf %d of %d", name, idx, size)
			gc, err := tlog.ProveTree(size, from, r)
			require.NoError(t, err, name)
			require.Equal(t, c, gc, "%s: %d to %d", name, from, size)
		}
	}
}

// TestCachedReaderMissingHash checks that a stored hash that is absent is
// ErrTreeMismatch, as with one Get per hash.
func TestCachedReaderMissingHash(t *testing.T) {
	t.Parallel()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer db.Close()
	_, err = cachedReader{db: db, chain: DefaultChain, cache: &treeCache{}}.ReadHashes([]int64{5, 1})
	require.ErrorIs(t, err, ErrTreeMismatch)
}

// seed is eventstoretest.Seed, which this internal test cannot import.
func seed(t testing.TB) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v, ok := os.LookupEnv("CUSTOS_SEED"); ok {
		var err error
		s, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay: CUSTOS_SEED=%d go test -run '^%s$')", s, s, t.Name())
	return s
}
