package eventstore_test

import (
	"context"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// signedStore appends n records to a new store signed by signer, closes it
// and returns its folder and records.
func signedStore(t *testing.T, signer *checkpoint.Signer, n int) (string, []eventstore.Record) {
	t.Helper()
	dir := t.TempDir()
	s := open(t, vfs.Default, dir, func(o *eventstore.Options) { o.Signer = signer })
	var recs []eventstore.Record
	for i := range n {
		r, err := s.Append(context.Background(), eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
		recs = append(recs, r...)
	}
	require.NoError(t, s.Close())
	return dir, recs
}

// rawDB opens dir's Pebble directly, as someone holding the folder would.
func rawDB(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	fn(db)
	require.NoError(t, db.Close())
}

// rewriteFrom replaces records from..end of recs with altered copies,
// recomputes every later hash and link and moves the head: the attack that
// the chain alone cannot detect.
func rewriteFrom(t *testing.T, db *pebble.DB, recs []eventstore.Record, from int) []eventstore.Record {
	t.Helper()
	out := append([]eventstore.Record(nil), recs...)
	for i := from - 1; i < len(out); i++ {
		r := out[i]
		if i == from-1 {
			r.Payload = []byte(`{"scope":"admin"}`)
		}
		if i > 0 {
			r.PrevHash = out[i-1].Hash
		}
		r.Hash = r.ComputeHash()
		out[i] = r
		require.NoError(t, db.Set(eventstore.RecordKey(r.Chain, r.Seq), append(r.Encode(nil), r.Hash[:]...), pebble.Sync))
	}
	last := out[len(out)-1]
	require.NoError(t, db.Set(eventstore.HeadKey(last.Chain), headValue(last.Seq, last.Hash), pebble.Sync))
	return out
}

func headValue(seq uint64, h eventstore.Hash) []byte {
	v := make([]byte, 8, 8+eventstore.HashSize)
	for i := range 8 {
		v[7-i] = byte(seq >> (8 * i))
	}
	return append(v, h[:]...)
}

// dropTree deletes every stored tree hash of the chain, so that Open
// rebuilds the tree from the (altered) records.
func dropTree(t *testing.T, db *pebble.DB) {
	t.Helper()
	require.NoError(t, db.DeleteRange(eventstore.TreeKey(eventstore.DefaultChain, 0), eventstore.TreeKey(eventstore.DefaultChain, math.MaxUint64), pebble.Sync))
}

// TestOpenRefusesAChainThatContradictsItsCheckpoint plays each attack of
// issue 18 on a data folder and checks that a writable Open with the
// signer refuses it with the right error.
func TestOpenRefusesAChainThatContradictsItsCheckpoint(t *testing.T) {
	t.Parallel()
	signer := eventstoretest.NewSigner(t, "custos.test/open")
	cases := []struct {
		name   string
		attack func(t *testing.T, db *pebble.DB, recs []eventstore.Record)
		want   error
	}{
		{"rewrite with recomputed hashes and head", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			rewriteFrom(t, db, recs, 15)
		}, eventstore.ErrTreeMismatch},
		{"rewrite with recomputed hashes, head and tree", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			rewriteFrom(t, db, recs, 15)
			dropTree(t, db)
		}, eventstore.ErrCheckpointMismatch},
		{"truncated tail with the head moved back", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			last := recs[len(recs)-2]
			require.NoError(t, db.Delete(eventstore.RecordKey(last.Chain, last.Seq+1), pebble.Sync))
			require.NoError(t, db.Set(eventstore.HeadKey(last.Chain), headValue(last.Seq, last.Hash), pebble.Sync))
		}, eventstore.ErrCheckpointMismatch},
		{"everything deleted but the checkpoint", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			require.NoError(t, db.DeleteRange(eventstore.RecordKey(eventstore.DefaultChain, 0), eventstore.RecordKey(eventstore.DefaultChain, math.MaxUint64), pebble.Sync))
			require.NoError(t, db.Delete(eventstore.HeadKey(eventstore.DefaultChain), pebble.Sync))
			dropTree(t, db)
		}, eventstore.ErrCheckpointMismatch},
		{"forged append with the head moved", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			last := recs[len(recs)-1]
			r := last
			r.Seq, r.PrevHash, r.Payload = last.Seq+1, last.Hash, []byte(`{"forged":true}`)
			r.Hash = r.ComputeHash()
			require.NoError(t, db.Set(eventstore.RecordKey(r.Chain, r.Seq), append(r.Encode(nil), r.Hash[:]...), pebble.Sync))
			require.NoError(t, db.Set(eventstore.HeadKey(r.Chain), headValue(r.Seq, r.Hash), pebble.Sync))
			dropTree(t, db)
		}, eventstore.ErrNotCovered},
		{"checkpoints deleted", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			require.NoError(t, db.DeleteRange(eventstore.CheckpointKey(eventstore.DefaultChain, 0), eventstore.CheckpointKey(eventstore.DefaultChain, math.MaxUint64), pebble.Sync))
		}, eventstore.ErrNotCovered},
		{"checkpoint signed by another key", func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
			other := eventstoretest.NewSigner(t, "custos.test/open")
			msg, err := other.Sign(checkpoint.Checkpoint{Origin: "custos.test/open/default", Size: uint64(len(recs)), Root: [32]byte(eventstoretest.NaiveRoot(hashes(recs)))})
			require.NoError(t, err)
			require.NoError(t, db.Set(eventstore.CheckpointKey(eventstore.DefaultChain, uint64(len(recs))), msg, pebble.Sync))
		}, eventstore.ErrCheckpointMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, recs := signedStore(t, signer, 20)
			rawDB(t, dir, func(db *pebble.DB) { tc.attack(t, db, recs) })
			_, err := eventstore.Open(eventstore.Options{Dir: dir, Signer: signer})
			require.ErrorIs(t, err, tc.want)
			t.Log(err)
		})
	}
	t.Run("an intact store opens", func(t *testing.T) {
		t.Parallel()
		dir, _ := signedStore(t, signer, 20)
		s, err := eventstore.Open(eventstore.Options{Dir: dir, Signer: signer})
		require.NoError(t, err)
		require.NoError(t, s.Close())
	})
}

func hashes(recs []eventstore.Record) []eventstore.Hash {
	out := make([]eventstore.Hash, len(recs))
	for i, r := range recs {
		out[i] = r.Hash
	}
	return out
}

// TestOpenBuildsTheTreeAndSignsExisting opens a store whose tree and
// checkpoints are missing (a store from before them): the tree is built
// from the records, and the chain is signed only with SignExisting.
func TestOpenBuildsTheTreeAndSignsExisting(t *testing.T) {
	t.Parallel()
	const records = 70
	dir := t.TempDir()
	s := open(t, vfs.Default, dir)
	for i := range records {
		_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	rawDB(t, dir, func(db *pebble.DB) {
		dropTree(t, db)
		// Records in sstables, not the memtable: the rebuild must not keep
		// slices into block buffers that its iterator reuses.
		require.NoError(t, db.Flush())
	})
	s = open(t, vfs.Default, dir)
	eventstoretest.RequireTree(t, s, eventstore.DefaultChain)
	require.NoError(t, s.Close())

	signer := eventstoretest.NewSigner(t, "custos.test/existing")
	_, err := eventstore.Open(eventstore.Options{Dir: dir, Signer: signer})
	require.ErrorIs(t, err, eventstore.ErrNotCovered)
	s = open(t, vfs.Default, dir, func(o *eventstore.Options) { o.Signer, o.SignExisting = signer, true })
	v, err := checkpoint.NewVerifier(signer.VerifierKey())
	require.NoError(t, err)
	require.Equal(t, uint64(records), eventstoretest.RequireCheckpoint(t, v, s, eventstore.DefaultChain).Size)
}

// TestEachChainSignsWithItsOwnKey writes chains default, system, acme and
// acme2 and checks that each chain's checkpoint verifies with that chain's
// verifier key and with no other's, before and after a reopen, and that
// Open checks a tenant chain with its own key: a checkpoint of acme that
// the deployment key signed (a valid signature, the wrong key) is refused.
func TestEachChainSignsWithItsOwnKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/chains")
	chains := []string{eventstore.DefaultChain, "system", "acme", "acme2"}
	dir := t.TempDir()
	s := open(t, vfs.Default, dir, func(o *eventstore.Options) { o.Signer = signer })
	for i, chain := range chains {
		for j := range i + 1 {
			_, err := s.Append(ctx, chain, draft(j))
			require.NoError(t, err)
		}
	}
	vkeys := map[string]string{}
	for _, chain := range chains {
		vkey, err := s.ChainVerifierKey(chain)
		require.NoError(t, err)
		want, err := signer.VerifierKeyFor(chain)
		require.NoError(t, err)
		require.Equal(t, want, vkey)
		vkeys[chain] = vkey
	}
	require.Equal(t, signer.VerifierKey(), vkeys[eventstore.DefaultChain], "default keeps the deployment key, so older folders verify")
	require.Equal(t, signer.VerifierKey(), vkeys["system"])
	require.NotEqual(t, vkeys["acme"], vkeys["acme2"])
	require.NotEqual(t, signer.VerifierKey(), vkeys["acme"])
	require.Contains(t, vkeys["acme"], "custos.test/chains/acme+", "a tenant's verifier key names its chain")

	check := func(log eventstore.Log) {
		t.Helper()
		for i, chain := range chains {
			cp := eventstoretest.RequireCheckpoint(t, eventstoretest.ChainVerifier(t, signer, chain), log, chain)
			require.Equal(t, uint64(i+1), cp.Size)
			require.Equal(t, "custos.test/chains/"+chain, cp.Origin)
			msg, err := log.SignedCheckpoint(ctx, chain)
			require.NoError(t, err)
			for _, other := range chains {
				if vkeys[other] == vkeys[chain] {
					continue
				}
				v, err := checkpoint.NewVerifier(vkeys[other])
				require.NoError(t, err)
				_, err = v.Open(msg, chain)
				require.ErrorIs(t, err, checkpoint.ErrSignature, "%s's checkpoint under %s's key", chain, other)
			}
		}
	}
	check(s)
	require.NoError(t, s.Close())
	s = open(t, vfs.Default, dir, func(o *eventstore.Options) { o.Signer = signer })
	check(s)
	_, err := s.Append(ctx, "acme", draft(9))
	require.NoError(t, err)
	require.Equal(t, uint64(4), eventstoretest.RequireCheckpoint(t, eventstoretest.ChainVerifier(t, signer, "acme"), s, "acme").Size)
	th, err := s.TreeHead(ctx, "acme")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// acme's latest checkpoint re-signed with the deployment key: the right
	// origin, size and root, but not acme's key.
	msg, err := signer.Sign(checkpoint.Checkpoint{Origin: "custos.test/chains/acme", Size: th.Size, Root: [32]byte(th.Root)})
	require.NoError(t, err)
	rawDB(t, dir, func(db *pebble.DB) {
		require.NoError(t, db.Set(eventstore.CheckpointKey("acme", th.Size), msg, pebble.Sync))
	})
	_, err = eventstore.Open(eventstore.Options{Dir: dir, Signer: signer})
	require.ErrorIs(t, err, eventstore.ErrCheckpointMismatch)
	require.ErrorIs(t, err, checkpoint.ErrSignature)
	require.ErrorContains(t, err, "acme")
}
