package httpapi_test

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify/witness"
)

// TestEveryTenantServesItsCosignedCheckpoint runs a real witness (it
// follows the deployment verifier key only) and a witness.Group over the
// stack's store: each tenant's key gets its own chain's cosigned
// checkpoint on GET /v1/audit/checkpoint and in its receipts, including a
// tenant created after the Group started.
func TestEveryTenantServesItsCosignedCheckpoint(t *testing.T) {
	t.Parallel()
	var group atomic.Pointer[witness.Group]
	s := newStack(t, withCosigned(func(chain string) []byte {
		if g := group.Load(); g != nil {
			return g.Cosigned(chain)
		}
		return nil
	}))
	adminOf := map[string]string{eventstore.DefaultChain: s.admin}
	createTenant := func(id string) {
		r := s.postJSON(t, "/v1/tenants", s.superadmin, fmt.Sprintf(`{"tenant_id":%q}`, id))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		adminOf[id] = r.object(t)["admin_key"].(map[string]any)["key"].(string)
	}
	createTenant("acme")

	wskey, _, err := witness.GenerateKey(rand.Reader, "witness.test/api")
	require.NoError(t, err)
	cosigner, err := witness.NewCosigner(wskey, time.Now)
	require.NoError(t, err)
	wlogs := &eventstoretest.Buffer{}
	w, err := witness.New(witness.Config{StatePath: filepath.Join(t.TempDir(), "state"), Logs: []string{s.signer.VerifierKey()},
		Cosigner: cosigner, Logger: slog.New(slog.NewTextHandler(wlogs, nil))})
	require.NoError(t, err)
	ws := httptest.NewServer(w.Handler())
	t.Cleanup(ws.Close)
	stateDir := t.TempDir()
	g, err := witness.NewGroup(witness.GroupConfig{Log: s.store, Signer: s.signer, Chains: s.reg.Chains,
		StatePath: func(chain string) string { return filepath.Join(stateDir, "cosigned."+chain) },
		Witnesses: []witness.Endpoint{{URL: ws.URL, Vkey: cosigner.VerifierKey()}}, Quorum: 1,
		Interval: 20 * time.Millisecond, Timeout: time.Second, Client: ws.Client(), Logger: s.logger})
	require.NoError(t, err)
	require.NoError(t, g.Start(t.Context()))
	t.Cleanup(g.Close)
	group.Store(g)
	createTenant("beta") // after Start: the Group finds it

	for chain, key := range adminOf {
		vkey, err := s.signer.VerifierKeyFor(chain)
		require.NoError(t, err)
		var body []byte
		require.Eventually(t, func() bool {
			r := s.get(t, "/v1/audit/checkpoint", key)
			body = r.body
			return r.status == http.StatusOK && strings.Contains(string(r.body), "— witness.test/api ")
		}, 10*time.Second, 20*time.Millisecond, "chain %s: %s", chain, wlogs.String())
		names, err := witness.CheckCosigned(body, vkey, []string{cosigner.VerifierKey()}, 1)
		require.NoError(t, err, chain)
		require.Equal(t, []string{"witness.test/api"}, names)
		v, err := checkpoint.NewVerifier(vkey)
		require.NoError(t, err)
		cp, err := v.Open(body, chain)
		require.NoError(t, err, chain)
		require.Equal(t, "custos.test/api/"+chain, cp.Origin)

		// A receipt of a record the cosigned checkpoint covers is built
		// on it.
		rec, err := s.store.Get(t.Context(), chain, 1)
		require.NoError(t, err)
		receipt := s.get(t, "/v1/audit/events/"+rec.ID+"/receipt", key)
		require.Equal(t, http.StatusOK, receipt.status, "%s", receipt.body)
		parsed, err := checkpoint.ParseReceipt(receipt.body)
		require.NoError(t, err)
		_, err = witness.CheckCosigned(parsed.Checkpoint, vkey, []string{cosigner.VerifierKey()}, 1)
		require.NoError(t, err, "%s's receipt carries its cosigned checkpoint", chain)
	}
}
