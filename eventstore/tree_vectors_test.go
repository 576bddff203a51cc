package eventstore_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// TestTreeVectors checks the tree vectors of docs/proofs.md
// (testdata/tree_vectors.json, computed by an independent Python
// implementation of RFC 6962) against the store's tree layout, x/mod's tlog
// and transparency-dev/merkle.
func TestTreeVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/tree_vectors.json")
	require.NoError(t, err)
	var v struct {
		Leaves    []string          `json:"leaves"`
		Roots     map[string]string `json:"roots"`
		Inclusion struct {
			Hashes []string `json:"hashes"`
		} `json:"inclusion"`
		Consistency struct {
			Hashes []string `json:"hashes"`
		} `json:"consistency"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	dec := func(s string) eventstore.Hash {
		b, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		return eventstore.Hash(b)
	}
	var leaves []eventstore.Hash
	for _, l := range v.Leaves {
		leaves = append(leaves, dec(l))
	}
	stored := make(memHashes, tlog.StoredHashCount(int64(len(leaves))))
	tree := eventstore.TreeFactory.NewEmptyRange(0)
	for _, l := range leaves {
		require.NoError(t, tree.Append(l[:], func(id compact.NodeID, h []byte) {
			copy(stored[eventstore.StoredIndex(id.Level, id.Index)][:], h)
		}))
	}
	for n, root := range v.Roots {
		size, err := strconv.Atoi(n)
		require.NoError(t, err)
		got, err := tlog.TreeHash(int64(size), stored)
		require.NoError(t, err)
		require.Equal(t, dec(root), eventstore.Hash(got), "root of %d", size)
		require.Equal(t, dec(root), eventstoretest.NaiveRoot(leaves[:size]), "naive root of %d", size)
	}
	root7v := dec(v.Roots["7"])
	ip, err := tlog.ProveRecord(7, 2, stored)
	require.NoError(t, err)
	require.Equal(t, v.Inclusion.Hashes, b64s(ip))
	require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, 2, 7, leaves[2][:], toBytes(fromTlog(ip)), root7v[:]))
	cp, err := tlog.ProveTree(7, 3, stored)
	require.NoError(t, err)
	require.Equal(t, v.Consistency.Hashes, b64s(cp))
	root3, root7 := dec(v.Roots["3"]), dec(v.Roots["7"])
	require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, 3, 7, toBytes(fromTlog(cp)), root3[:], root7[:]))
}

func b64s[H ~[]tlog.Hash](p H) []string {
	out := make([]string, len(p))
	for i := range p {
		out[i] = base64.StdEncoding.EncodeToString(p[i][:])
	}
	return out
}
