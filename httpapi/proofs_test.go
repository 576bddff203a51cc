package httpapi_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/verify"
	"github.com/custos-dev/custos/verify/receipttest"
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

// vkeyOf is the Config.VerifierKey of a store signed by s (nil: none).
func vkeyOf(s *checkpoint.Signer) func(chain string) (string, error) {
	if s == nil {
		return nil
	}
	return s.VerifierKeyFor
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
		"/v1/audit/proof/inclusion?seq=-1",
		"/v1/audit/proof/inclusion?seq=1.5",
		"/v1/audit/proof/inclusion?seq=1&size=0",
		"/v1/audit/proof/inclusion?seq=2&size=1",
		"/v1/audit/proof/inclusion?seq=9223372036854775807",
		"/v1/audit/proof/inclusion?seq=18446744073709551616",
		"/v1/audit/proof/inclusion?seq=1&size=18446744073709551615",
		"/v1/audit/proof/inclusion?seq=1&seq=2",
		"/v1/audit/proof/consistency?from=0&to=1",
		"/v1/audit/proof/consistency?from=1&to=0",
		"/v1/audit/proof/consistency?from=x",
		fmt.Sprintf("/v1/audit/proof/consistency?from=%d", s.head(t)+1),
		fmt.Sprintf("/v1/audit/proof/consistency?from=1&to=%d", cp.Size+1000),
		"/v1/audit/proof/consistency?from=9223372036854775807",
		"/v1/audit/proof/consistency?from=9223372036854775808",
	} {
		r := s.get(t, path, s.admin)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", path, r.body)
		var e struct {
			Detail string `json:"detail"`
		}
		require.NoError(t, json.Unmarshal(r.body, &e), "%s: %s", path, r.body)
		assert.NotEmpty(t, e.Detail, "%s: %s", path, r.body)
		assert.NotContains(t, e.Detail, "eventstore:", "%s: a package name in an answer", path)
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

// TestTenantVerifierKeys creates tenants acme and acme2 as the superadmin
// and checks, with each tenant's first admin key, that GET /v1/audit/vkey
// gives that tenant's own key (not the deployment's, not the other
// tenant's), and that the tenant's checkpoint and a receipt of its chain
// verify with it and with no other key, also after a restart.
func TestTenantVerifierKeys(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	adminOf := map[string]string{eventstore.DefaultChain: s.admin}
	for _, id := range []string{"acme", "acme2"} {
		r := s.postJSON(t, "/v1/tenants", s.superadmin, fmt.Sprintf(`{"tenant_id":%q}`, id))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		adminOf[id] = r.object(t)["admin_key"].(map[string]any)["key"].(string)
	}
	vkeys := map[string]string{}
	check := func(t *testing.T) {
		for chain, key := range adminOf {
			r := s.get(t, "/v1/audit/vkey", key)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			vkey := strings.TrimSuffix(string(r.body), "\n")
			if prev, ok := vkeys[chain]; ok {
				require.Equal(t, prev, vkey, "%s's verifier key is the same after a restart", chain)
			}
			vkeys[chain] = vkey
		}
		require.Equal(t, s.signer.VerifierKey(), vkeys[eventstore.DefaultChain], "tenant default keeps the deployment key")
		require.True(t, strings.HasPrefix(vkeys["acme"], "custos.test/api/acme+"), vkeys["acme"])
		require.True(t, strings.HasPrefix(vkeys["acme2"], "custos.test/api/acme2+"), vkeys["acme2"])
		require.Len(t, map[string]bool{vkeys["default"]: true, vkeys["acme"]: true, vkeys["acme2"]: true}, 3)

		for chain, key := range adminOf {
			r := s.get(t, "/v1/audit/checkpoint", key)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			rec, err := s.store.Get(t.Context(), chain, 1)
			require.NoError(t, err)
			receipt := s.get(t, "/v1/audit/events/"+rec.ID+"/receipt", key)
			require.Equal(t, http.StatusOK, receipt.status, "%s", receipt.body)
			for other, vkey := range vkeys {
				v, err := checkpoint.NewVerifier(vkey)
				require.NoError(t, err)
				cp, err := v.Open(r.body, chain)
				_, rerr := verify.Receipt(receipt.body, v)
				_, terr := receipttest.Check(receipt.body, vkey)
				if other != chain {
					require.ErrorIs(t, err, checkpoint.ErrSignature, "%s's checkpoint under %s's key", chain, other)
					require.ErrorIs(t, rerr, verify.ErrReceipt, "%s's receipt under %s's key", chain, other)
					require.Error(t, terr, "receipttest: %s's receipt under %s's key", chain, other)
					continue
				}
				require.NoError(t, err, "%s's checkpoint under its own key", chain)
				require.Equal(t, "custos.test/api/"+chain, cp.Origin)
				root, err := s.store.TreeRoot(t.Context(), chain, cp.Size)
				require.NoError(t, err)
				require.Equal(t, [32]byte(root), cp.Root)
				require.NoError(t, rerr, "%s's receipt under its own key", chain)
				require.NoError(t, terr, "receipttest: %s's receipt under its own key", chain)
			}
		}
	}
	check(t)
	s.restart()
	check(t)
}
