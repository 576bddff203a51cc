package eventstoretest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// NaiveRoot is the RFC 6962 Merkle tree hash of leaves computed by the
// recursive definition (RFC 6962 section 2.1), independently of any tree
// library: an oracle for tests.
func NaiveRoot(leaves []eventstore.Hash) eventstore.Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := NaiveRoot(leaves[:k]), NaiveRoot(leaves[k:])
		return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
	}
}

// Leaves returns the record hashes of chain's durable records, the leaves
// of its tree.
func Leaves(t testing.TB, log eventstore.Log, chain string) []eventstore.Hash {
	t.Helper()
	var out []eventstore.Hash
	require.NoError(t, log.Records(context.Background(), chain, 1, 0, func(r eventstore.Record) error {
		out = append(out, r.Hash)
		return nil
	}))
	return out
}

// RequireTree checks chain's tree against its records: the tree head has
// the records' count and their naive root, and the inclusion proof of
// every record and the consistency proof from every size verify against
// it with x/mod's tlog.
func RequireTree(t testing.TB, log eventstore.Log, chain string) eventstore.TreeHead {
	t.Helper()
	ctx := context.Background()
	leaves := Leaves(t, log, chain)
	th, err := log.TreeHead(ctx, chain)
	require.NoError(t, err)
	require.Equal(t, uint64(len(leaves)), th.Size, "tree size is the record count")
	require.Equal(t, NaiveRoot(leaves), th.Root, "tree root over the records")
	n := int64(th.Size)
	for i := int64(0); i < n; i++ {
		p, err := log.InclusionProof(ctx, chain, uint64(i), th.Size)
		require.NoError(t, err)
		require.NoError(t, tlog.CheckRecord(toTlog(p), n, tlog.Hash(th.Root), i, tlog.Hash(leaves[i])), "leaf %d of %d", i, n)
		p, err = log.ConsistencyProof(ctx, chain, uint64(i+1), th.Size)
		require.NoError(t, err)
		require.NoError(t, tlog.CheckTree(toTlog(p), n, tlog.Hash(th.Root), i+1, tlog.Hash(NaiveRoot(leaves[:i+1]))), "from %d to %d", i+1, n)
	}
	return th
}

func toTlog(p []eventstore.Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// NewSigner returns a checkpoint signer with a fresh key named name.
func NewSigner(t testing.TB, name string) *checkpoint.Signer {
	t.Helper()
	skey, _, err := checkpoint.GenerateKey(rand.Reader, name)
	require.NoError(t, err)
	s, err := checkpoint.NewSigner(skey)
	require.NoError(t, err)
	return s
}

var treeCases = []logCase{
	{"the tree grows with the chain and its proofs verify", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		ctx := context.Background()
		th, err := log.TreeHead(ctx, eventstore.DefaultChain)
		require.NoError(t, err)
		assert.Equal(t, eventstore.TreeHead{Size: 0, Root: eventstore.EmptyTreeRoot()}, th)
		for i, n := range []int{1, 2, 5, 1, 13} {
			drafts := make([]eventstore.Draft, n)
			for j := range drafts {
				drafts[j] = Draft(i*100 + j)
			}
			_, err := log.Append(ctx, eventstore.DefaultChain, drafts...)
			require.NoError(t, err)
			RequireTree(t, log, eventstore.DefaultChain)
		}
		root, err := log.TreeRoot(ctx, eventstore.DefaultChain, 3)
		require.NoError(t, err)
		assert.Equal(t, NaiveRoot(Leaves(t, log, eventstore.DefaultChain)[:3]), root)
	}},
	{"proofs only cover durable sizes", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		ctx := context.Background()
		_, err := log.Append(ctx, eventstore.DefaultChain, Draft(1), Draft(2), Draft(3))
		require.NoError(t, err)
		_, err = log.InclusionProof(ctx, eventstore.DefaultChain, 0, 4)
		require.ErrorIs(t, err, eventstore.ErrBadTreeSize, "size past the head")
		_, err = log.InclusionProof(ctx, eventstore.DefaultChain, 3, 3)
		require.ErrorIs(t, err, eventstore.ErrBadTreeSize, "index not below size")
		_, err = log.ConsistencyProof(ctx, eventstore.DefaultChain, 0, 3)
		require.ErrorIs(t, err, eventstore.ErrBadTreeSize, "from 0")
		_, err = log.ConsistencyProof(ctx, eventstore.DefaultChain, 3, 2)
		require.ErrorIs(t, err, eventstore.ErrBadTreeSize, "from past to")
		_, err = log.TreeRoot(ctx, eventstore.DefaultChain, 4)
		require.ErrorIs(t, err, eventstore.ErrBadTreeSize)
		p, err := log.ConsistencyProof(ctx, eventstore.DefaultChain, 3, 3)
		require.NoError(t, err)
		assert.Empty(t, p)
	}},
	{"the tree survives a reopen", func(t *testing.T, log eventstore.Log, reopen func() eventstore.Log) {
		ctx := context.Background()
		for i := range 7 {
			_, err := log.Append(ctx, eventstore.DefaultChain, Draft(i))
			require.NoError(t, err)
		}
		require.NoError(t, log.Close())
		log = reopen()
		RequireTree(t, log, eventstore.DefaultChain)
		_, err := log.Append(ctx, eventstore.DefaultChain, Draft(8), Draft(9))
		require.NoError(t, err)
		RequireTree(t, log, eventstore.DefaultChain)
	}},
	{"a log without a signer has no checkpoint", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		_, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(1))
		require.NoError(t, err)
		_, err = log.SignedCheckpoint(context.Background(), eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrNoCheckpoint)
	}},
}

// SignedOpener is an Opener whose logs sign checkpoints with signer.
type SignedOpener func(t *testing.T, signer *checkpoint.Signer) (log eventstore.Log, reopen func() eventstore.Log)

// TestSignedLog runs the checkpoint cases of the contract against logs
// that sign with a signer.
func TestSignedLog(t *testing.T, open SignedOpener) {
	t.Helper()
	for _, c := range signedCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			signer := NewSigner(t, "custos.test/suite")
			log, reopen := open(t, signer)
			t.Cleanup(func() { _ = log.Close() })
			c.run(t, signer, log, func() eventstore.Log {
				l := reopen()
				t.Cleanup(func() { _ = l.Close() })
				return l
			})
		})
	}
}

// ChainVerifier returns the verifier of chain's checkpoints under the
// deployment key signer (signer.ForChain(chain)).
func ChainVerifier(t testing.TB, signer *checkpoint.Signer, chain string) *checkpoint.Verifier {
	t.Helper()
	vkey, err := signer.VerifierKeyFor(chain)
	require.NoError(t, err)
	v, err := checkpoint.NewVerifier(vkey)
	require.NoError(t, err)
	return v
}

// RequireCheckpoint opens chain's latest checkpoint with v and checks that
// it signs the log's current tree.
func RequireCheckpoint(t testing.TB, v *checkpoint.Verifier, log eventstore.Log, chain string) checkpoint.Checkpoint {
	t.Helper()
	msg, err := log.SignedCheckpoint(context.Background(), chain)
	require.NoError(t, err)
	cp, err := v.Open(msg, chain)
	require.NoError(t, err)
	th, err := log.TreeHead(context.Background(), chain)
	require.NoError(t, err)
	require.Equal(t, th.Size, cp.Size, "the latest checkpoint covers every durable record")
	require.Equal(t, [32]byte(th.Root), cp.Root)
	return cp
}

var signedCases = []struct {
	name string
	run  func(t *testing.T, signer *checkpoint.Signer, log eventstore.Log, reopen func() eventstore.Log)
}{
	{"every acknowledged append is covered by a signed checkpoint", func(t *testing.T, signer *checkpoint.Signer, log eventstore.Log, _ func() eventstore.Log) {
		ctx := context.Background()
		v := ChainVerifier(t, signer, eventstore.DefaultChain)
		_, err := log.SignedCheckpoint(ctx, eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrNoCheckpoint, "nothing appended yet")
		for i := range 5 {
			recs, err := log.Append(ctx, eventstore.DefaultChain, Draft(i))
			require.NoError(t, err)
			cp := RequireCheckpoint(t, v, log, eventstore.DefaultChain)
			assert.GreaterOrEqual(t, cp.Size, recs[0].Seq)
			assert.Equal(t, "custos.test/suite/default", cp.Origin)
		}
	}},
	{"checkpoints of chains are apart, each signed with its chain's key, and survive a reopen", func(t *testing.T, signer *checkpoint.Signer, log eventstore.Log, reopen func() eventstore.Log) {
		ctx := context.Background()
		va, vb := ChainVerifier(t, signer, "tenant-a"), ChainVerifier(t, signer, "tenant-b")
		_, err := log.Append(ctx, "tenant-a", Draft(1), Draft(2))
		require.NoError(t, err)
		_, err = log.Append(ctx, "tenant-b", Draft(1))
		require.NoError(t, err)
		require.NoError(t, log.Close())
		log = reopen()
		a := RequireCheckpoint(t, va, log, "tenant-a")
		assert.Equal(t, uint64(2), a.Size)
		assert.Equal(t, "custos.test/suite/tenant-a", a.Origin)
		b := RequireCheckpoint(t, vb, log, "tenant-b")
		assert.Equal(t, uint64(1), b.Size)
		_, err = vb.Open(must(log.SignedCheckpoint(ctx, "tenant-a")), "tenant-b")
		require.ErrorIs(t, err, checkpoint.ErrSignature, "tenant-b's key does not sign tenant-a's checkpoints")
		deployment := ChainVerifier(t, signer, eventstore.DefaultChain)
		_, err = deployment.Open(must(log.SignedCheckpoint(ctx, "tenant-a")), "tenant-a")
		require.ErrorIs(t, err, checkpoint.ErrSignature, "nor does the deployment key")
		_, err = log.Append(ctx, "tenant-a", Draft(3))
		require.NoError(t, err)
		assert.Equal(t, uint64(3), RequireCheckpoint(t, va, log, "tenant-a").Size)
	}},
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
