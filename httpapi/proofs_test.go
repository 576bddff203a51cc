package httpapi_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// newTestSigner returns a checkpoint signer with a new key.
func newTestSigner(t testing.TB) *checkpoint.Signer {
	skey, _, err := checkpoint.GenerateKey(rand.Reader, "custos.test/api")
	require.NoError(t, err)
	signer, err := checkpoint.NewSigner(skey)
	require.NoError(t, err)
	return signer
}

// withoutSigner makes the stack's store sign no checkpoints.
func withoutSigner(s *stack) { s.signer = nil }

func vkeyOf(s *checkpoint.Signer) string {
	if s == nil {
		return ""
	}
	return s.VerifierKey()
}

func decodeHashes(t *testing.T, in []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(in))
	for i, h := range in {
		b, err := base64.StdEncoding.DecodeString(h)
		require.NoError(t, err)
		require.Len(t, b, 32)
		copy(out[i][:], b)
	}
	return out
}

// TestEvidenceRoutes fetches the checkpoint and verifier key, then checks
// every record's inclusion proof and the consistency proof from every size
// against the signed root with x/mod's tlog, as an auditor's program would.
func TestEvidenceRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	vkey := s.get(t, "/v1/audit/vkey", s.admin)
	require.Equal(t, http.StatusOK, vkey.status, "%s", vkey.body)
	s.waitUsed(t, s.adminID) // the tree grows by that record, then stays put
	assert.Equal(t, s.signer.VerifierKey()+"\n", string(vkey.body))
	v, err := checkpoint.NewVerifier(string(vkey.body))
	require.NoError(t, err)

	r := s.get(t, "/v1/audit/checkpoint", s.admin)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	cp, err := v.Open(r.body, eventstore.DefaultChain)
	require.NoError(t, err)
	require.LessOrEqual(t, cp.Size, s.head(t))
	root, err := s.store.TreeRoot(t.Context(), eventstore.DefaultChain, cp.Size)
	require.NoError(t, err)
	require.Equal(t, [32]byte(root), cp.Root)
	assert.Equal(t, "custos.test/api/default", cp.Origin)

	var recs []eventstore.Record
	for seq := uint64(1); seq <= cp.Size; seq++ {
		rec, err := s.store.Get(t.Context(), eventstore.DefaultChain, seq)
		require.NoError(t, err)
		recs = append(recs, rec)
	}
	for _, rec := range recs {
		r := s.get(t, fmt.Sprintf("/v1/audit/proof/inclusion?seq=%d&size=%d", rec.Seq, cp.Size), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var p struct {
			Index    uint64   `json:"index"`
			TreeSize uint64   `json:"tree_size"`
			Hashes   []string `json:"hashes"`
		}
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Equal(t, rec.Seq-1, p.Index)
		require.Equal(t, cp.Size, p.TreeSize)
		require.NoError(t, tlog.CheckRecord(decodeHashes(t, p.Hashes), int64(cp.Size), cp.Root, int64(rec.Seq-1), tlog.Hash(rec.Hash)), "seq %d", rec.Seq)
		r = s.get(t, fmt.Sprintf("/v1/audit/proof/consistency?from=%d&to=%d", rec.Seq, cp.Size), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var c struct {
			From   uint64   `json:"from"`
			To     uint64   `json:"to"`
			Hashes []string `json:"hashes"`
		}
		require.NoError(t, json.Unmarshal(r.body, &c))
		require.Equal(t, cp.Size, c.To)
		old, err := s.store.TreeRoot(t.Context(), eventstore.DefaultChain, rec.Seq)
		require.NoError(t, err)
		require.NoError(t, tlog.CheckTree(decodeHashes(t, c.Hashes), int64(c.To), cp.Root, int64(rec.Seq), tlog.Hash(old)), "from %d", rec.Seq)
	}

	r = s.get(t, "/v1/audit/proof/consistency?from=1", s.admin)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), fmt.Sprintf(`"to":%d`, s.head(t)), "to defaults to the current size")

	for _, path := range []string{
		"/v1/audit/proof/consistency?from=0",
		"/v1/audit/proof/consistency?from=2&to=1",
		"/v1/audit/proof/consistency",
		"/v1/audit/proof/inclusion?seq=0",
		"/v1/audit/proof/inclusion",
		fmt.Sprintf("/v1/audit/proof/inclusion?seq=%d", cp.Size+1),
		fmt.Sprintf("/v1/audit/proof/inclusion?seq=1&size=%d", cp.Size+1),
		"/v1/audit/proof/inclusion?seq=x",
		"/v1/audit/proof/inclusion?seq=1&other=1",
	} {
		r := s.get(t, path, s.admin)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", path, r.body)
	}
	assert.Equal(t, http.StatusUnauthorized, s.get(t, "/v1/audit/checkpoint", "").status)
}

func TestEvidenceRoutesWithoutASigner(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutSigner)
	assert.Equal(t, http.StatusNotFound, s.get(t, "/v1/audit/checkpoint", s.admin).status)
	assert.Equal(t, http.StatusNotFound, s.get(t, "/v1/audit/vkey", s.admin).status)
	assert.Equal(t, http.StatusOK, s.get(t, "/v1/audit/proof/inclusion?seq=1", s.admin).status, "proofs need no signer")
}
