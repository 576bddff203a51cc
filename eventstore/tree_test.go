package eventstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// memHashes is x/mod tlog's own stored hashes of a tree, built with
// tlog.StoredHashesForRecordHash: an oracle independent of the store.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

func tlogHashes(t testing.TB, leaves []eventstore.Hash) memHashes {
	t.Helper()
	var m memHashes
	for i, l := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), tlog.Hash(l), m)
		require.NoError(t, err)
		m = append(m, hs...)
	}
	return m
}

func toBytes(p []eventstore.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}

func toTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		copy(out[i][:], p[i])
	}
	return out
}

// checkInclusion checks one inclusion proof with both libraries, and that
// a flipped byte anywhere (proof, leaf, root) fails both.
func checkInclusion(t *testing.T, rng *rand.Rand, p []eventstore.Hash, i, n uint64, leaf, root eventstore.Hash) {
	t.Helper()
	h := rfc6962.DefaultHasher
	pb := toBytes(p)
	require.NoError(t, proof.VerifyInclusion(h, i, n, leaf[:], pb, root[:]), "merkle: leaf %d of %d", i, n)
	require.NoError(t, tlog.CheckRecord(toTlog(pb), int64(n), tlog.Hash(root), int64(i), tlog.Hash(leaf)), "tlog: leaf %d of %d", i, n)
	leaf2, root2 := leaf, root
	switch k := rng.IntN(3); {
	case k == 0 && len(pb) > 0:
		pb[rng.IntN(len(pb))][rng.IntN(32)] ^= 1 << rng.IntN(8)
	case k == 1:
		leaf2[rng.IntN(32)] ^= 1 << rng.IntN(8)
	default:
		root2[rng.IntN(32)] ^= 1 << rng.IntN(8)
	}
	require.Error(t, proof.VerifyInclusion(h, i, n, leaf2[:], pb, root2[:]), "merkle accepts a flipped byte: leaf %d of %d", i, n)
	require.Error(t, tlog.CheckRecord(toTlog(pb), int64(n), tlog.Hash(root2), int64(i), tlog.Hash(leaf2)), "tlog accepts a flipped byte: leaf %d of %d", i, n)
}

func checkConsistency(t *testing.T, rng *rand.Rand, p []eventstore.Hash, m, n uint64, rootM, rootN eventstore.Hash) {
	t.Helper()
	h := rfc6962.DefaultHasher
	pb := toBytes(p)
	require.NoError(t, proof.VerifyConsistency(h, m, n, pb, rootM[:], rootN[:]), "merkle: %d to %d", m, n)
	require.NoError(t, tlog.CheckTree(toTlog(pb), int64(n), tlog.Hash(rootN), int64(m), tlog.Hash(rootM)), "tlog: %d to %d", m, n)
	if m == n {
		return // nothing to prove: only a root flip can fail
	}
	a, b := rootM, rootN
	switch k := rng.IntN(3); {
	case k == 0 && len(pb) > 0:
		pb[rng.IntN(len(pb))][rng.IntN(32)] ^= 1 << rng.IntN(8)
	case k == 1:
		a[rng.IntN(32)] ^= 1 << rng.IntN(8)
	default:
		b[rng.IntN(32)] ^= 1 << rng.IntN(8)
	}
	require.Error(t, proof.VerifyConsistency(h, m, n, pb, a[:], b[:]), "merkle accepts a flipped byte: %d to %d", m, n)
	require.Error(t, tlog.CheckTree(toTlog(pb), int64(n), tlog.Hash(b), int64(m), tlog.Hash(a)), "tlog accepts a flipped byte: %d to %d", m, n)
}

// TestTreeOracle appends a random number of records (up to several
// thousand) in random group sizes to a real Pebble store, then checks the
// stored tree against x/mod's tlog and a naive recursive root at every
// size, and every inclusion and consistency proof of the final tree (and
// of random smaller trees) with both transparency-dev/merkle and tlog.
func TestTreeOracle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 1))
	n := 1 + rng.IntN(4000)
	s := open(t, vfs.Default, t.TempDir())
	ctx := context.Background()
	for i := 0; i < n; {
		k := min(1+rng.IntN(64), n-i)
		drafts := make([]eventstore.Draft, k)
		for j := range drafts {
			drafts[j] = draft(i + j)
		}
		_, err := s.Append(ctx, eventstore.DefaultChain, drafts...)
		require.NoError(t, err)
		i += k
	}
	leaves := eventstoretest.Leaves(t, s, eventstore.DefaultChain)
	require.Len(t, leaves, n)
	oracle := tlogHashes(t, leaves)
	roots := make([]eventstore.Hash, n+1)
	for size := 0; size <= n; size++ {
		want, err := tlog.TreeHash(int64(size), oracle)
		require.NoError(t, err)
		got, err := s.TreeRoot(ctx, eventstore.DefaultChain, uint64(size))
		require.NoError(t, err)
		require.Equal(t, eventstore.Hash(want), got, "root at size %d", size)
		roots[size] = got
	}
	require.Equal(t, eventstoretest.NaiveRoot(leaves), roots[n])
	require.Equal(t, eventstoretest.NaiveRoot(leaves[:n/2]), roots[n/2])
	N := uint64(n)
	for i := range N {
		p, err := s.InclusionProof(ctx, eventstore.DefaultChain, i, N)
		require.NoError(t, err)
		checkInclusion(t, rng, p, i, N, leaves[i], roots[n])
		p, err = s.ConsistencyProof(ctx, eventstore.DefaultChain, i+1, N)
		require.NoError(t, err)
		checkConsistency(t, rng, p, i+1, N, roots[i+1], roots[n])
	}
	for range 500 {
		size := 1 + rng.Uint64N(N)
		i := rng.Uint64N(size)
		p, err := s.InclusionProof(ctx, eventstore.DefaultChain, i, size)
		require.NoError(t, err)
		checkInclusion(t, rng, p, i, size, leaves[i], roots[size])
		from := 1 + rng.Uint64N(size)
		p, err = s.ConsistencyProof(ctx, eventstore.DefaultChain, from, size)
		require.NoError(t, err)
		checkConsistency(t, rng, p, from, size, roots[from], roots[size])
	}
	t.Logf("%d records", n)
}

// TestTreeOracleMillion builds a tree of 2^20 leaves in memory the way the
// sequencer does (a compact range whose new nodes go to their tlog stored
// hash index) and checks that it stores exactly the hashes x/mod's tlog
// stores, that its root is tlog's and the naive one, and that sampled
// proofs verify with both libraries.
func TestTreeOracleMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("2^20 leaves; skipped with -short")
	}
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 2))
	const n = 1 << 20
	leaves := make([]eventstore.Hash, n)
	var buf [8]byte
	for i := range leaves {
		binary.BigEndian.PutUint64(buf[:], uint64(i)^rng.Uint64())
		leaves[i] = sha256.Sum256(append([]byte{0}, buf[:]...))
	}
	stored := make(memHashes, tlog.StoredHashCount(n))
	written := 0
	tree := eventstore.TreeFactory.NewEmptyRange(0)
	for _, l := range leaves {
		require.NoError(t, tree.Append(l[:], func(id compact.NodeID, h []byte) {
			copy(stored[eventstore.StoredIndex(id.Level, id.Index)][:], h)
			written++
		}))
	}
	require.Equal(t, len(stored), written, "one stored hash per tlog stored index")
	oracle := tlogHashes(t, leaves)
	require.Equal(t, oracle, stored, "the same hashes at the same indexes as tlog")
	root, err := tree.GetRootHash(nil)
	require.NoError(t, err)
	want, err := tlog.TreeHash(n, oracle)
	require.NoError(t, err)
	require.Equal(t, want[:], root)
	require.Equal(t, eventstoretest.NaiveRoot(leaves), eventstore.Hash(root))
	for range 200 {
		size := 1 + rng.Int64N(n)
		i := rng.Int64N(size)
		sizeRoot, err := tlog.TreeHash(size, stored)
		require.NoError(t, err)
		p, err := tlog.ProveRecord(size, i, stored)
		require.NoError(t, err)
		checkInclusion(t, rng, fromTlog(p), uint64(i), uint64(size), leaves[i], eventstore.Hash(sizeRoot))
		from := 1 + rng.Int64N(size)
		fromRoot, err := tlog.TreeHash(from, stored)
		require.NoError(t, err)
		tp, err := tlog.ProveTree(size, from, stored)
		require.NoError(t, err)
		checkConsistency(t, rng, fromTlog(tp), uint64(from), uint64(size), eventstore.Hash(fromRoot), eventstore.Hash(sizeRoot))
	}
}

// TestStoreTreeAtTwoToTheTwenty appends 2^20 records through the store, in
// group commits of random sizes, and checks the stored tree against x/mod's
// tlog over the record hashes: the root at 2^20 and at random sizes, and
// inclusion and consistency proofs served by the store at random points,
// verified with both libraries.
func TestStoreTreeAtTwoToTheTwenty(t *testing.T) {
	if testing.Short() {
		t.Skip("2^20 records; skipped with -short")
	}
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 3))
	const n = 1 << 20
	s := open(t, vfs.Default, t.TempDir())
	ctx := context.Background()
	drafts := make([]eventstore.Draft, 4096)
	for j := range drafts {
		drafts[j] = eventstore.Draft{Type: "test.appended", Actor: "system:test", Payload: []byte(`{}`)}
	}
	leaves := make([]eventstore.Hash, 0, n)
	for len(leaves) < n {
		k := min(1+rng.IntN(len(drafts)), n-len(leaves))
		recs, err := s.Append(ctx, eventstore.DefaultChain, drafts[:k]...)
		require.NoError(t, err)
		for _, r := range recs {
			leaves = append(leaves, r.Hash)
		}
	}
	oracle := tlogHashes(t, leaves)
	root := func(size uint64) eventstore.Hash {
		want, err := tlog.TreeHash(int64(size), oracle)
		require.NoError(t, err)
		got, err := s.TreeRoot(ctx, eventstore.DefaultChain, size)
		require.NoError(t, err)
		require.Equal(t, eventstore.Hash(want), got, "root at size %d", size)
		return got
	}
	require.Equal(t, eventstoretest.NaiveRoot(leaves), root(n))
	for range 100 {
		size := 1 + rng.Uint64N(n)
		i, from := rng.Uint64N(size), 1+rng.Uint64N(size)
		p, err := s.InclusionProof(ctx, eventstore.DefaultChain, i, size)
		require.NoError(t, err)
		checkInclusion(t, rng, p, i, size, leaves[i], root(size))
		p, err = s.ConsistencyProof(ctx, eventstore.DefaultChain, from, size)
		require.NoError(t, err)
		checkConsistency(t, rng, p, from, size, root(from), root(size))
	}
}

func fromTlog[H ~[]tlog.Hash](p H) []eventstore.Hash {
	out := make([]eventstore.Hash, len(p))
	for i := range p {
		out[i] = eventstore.Hash(p[i])
	}
	return out
}
