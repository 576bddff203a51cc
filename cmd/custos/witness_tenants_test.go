package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cosignedOf waits until GET /v1/audit/checkpoint with key serves a
// checkpoint cosigned by the witness, of at least size min, and returns
// it.
func cosignedOf(t *testing.T, srv *server, key string, min uint64) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		code, b := srv.do(t, http.MethodGet, "/v1/audit/checkpoint", key, "")
		body = string(b)
		return code == http.StatusOK && strings.Contains(body, "— witness.test/w1 ") && checkpointSize(t, b) >= min
	}, 15*time.Second, 50*time.Millisecond, "no cosigned checkpoint of size %d: %s; logs: %s", min, body, srv.logs.String())
	return body
}

// checkpointSize is the size line of a checkpoint note.
func checkpointSize(t *testing.T, note []byte) uint64 {
	t.Helper()
	lines := strings.Split(string(note), "\n")
	require.Greater(t, len(lines), 2, "%s", note)
	n, err := strconv.ParseUint(lines[1], 10, 64)
	require.NoError(t, err, "%s", note)
	return n
}

// headOf is the head seq of the chain of key's tenant.
func headOf(t *testing.T, srv *server, key string) uint64 {
	t.Helper()
	code, body := srv.do(t, http.MethodGet, "/v1/audit/verify", key, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var head struct {
		HeadSeq uint64 `json:"head_seq"`
	}
	require.NoError(t, json.Unmarshal(body, &head))
	return head.HeadSeq
}

// evaluateForReceipt evaluates with X-Custos-Receipt: true as the drill
// agent's key and returns the event id.
func evaluateForReceipt(t *testing.T, srv *server, key string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.addr+"/v1/context/evaluate",
		strings.NewReader(`{"agent_role":"loan_officer","agent_id":"drill-agent","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":"s-receipt"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("X-Custos-Receipt", "true")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var d struct {
		EventID string `json:"event_id"`
		Receipt string `json:"receipt"`
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	require.NotEmpty(t, d.Receipt)
	return d.EventID
}

// TestServeWitnessesEveryTenantChain: serve with one witness (which follows
// the deployment verifier key only) gets a tenant created at runtime
// cosigned: its admin key sees the cosigned checkpoint, its receipts and
// both of its exports (online and offline) carry it and verify with the
// tenant's verifier key and the witness's. Each chain keeps its own file
// beside DATA.cosigned. Then the folder is replaced by an older copy, with
// chain acme shorter than what was cosigned: serve refuses to start naming
// chain acme, from the kept file, and from the witness alone once the kept
// file is gone.
func TestServeWitnessesEveryTenantChain(t *testing.T) {
	t.Parallel()
	c := newCosignedSetup(t, "custos.test/tenants")
	witnessArgs := []string{"--witness", c.w.url + "=" + c.w.vkey, "--witness-interval", "100ms", "--witness-timeout", "2s"}
	super := superadminKeyOf(t, c.srv)
	acme := createTenant(t, c.srv, super, "acme")
	evalKey, _ := drillSetup(t, c.srv, acme)
	eventID := evaluateForReceipt(t, c.srv, evalKey)

	cp := cosignedOf(t, c.srv, acme, headOf(t, c.srv, acme))
	assert.True(t, strings.HasPrefix(cp, "custos.test/tenants/acme\n"), cp)
	assert.Contains(t, cp, "\n— custos.test/tenants/acme ", "signed by the tenant's own key")
	assert.NotContains(t, cp, "\n— custos.test/tenants ", "the deployment key's countersignature is for the witness only")
	code, vkey := c.srv.do(t, http.MethodGet, "/v1/audit/vkey", acme, "")
	require.Equal(t, http.StatusOK, code)
	acmeVkey := filepath.Join(c.base, "acme.vkey")
	require.NoError(t, os.WriteFile(acmeVkey, vkey, 0o644))
	cpFile := filepath.Join(c.base, "acme.cp")
	require.NoError(t, os.WriteFile(cpFile, []byte(cp), 0o644))
	// Tenant default still gets its own.
	assert.True(t, strings.HasPrefix(cosignedOf(t, c.srv, c.admin, 1), "custos.test/tenants/default\n"))

	// The receipt of the evaluated event is built on the cosigned
	// checkpoint once that covers it.
	code, receipt := c.srv.do(t, http.MethodGet, "/v1/audit/events/"+eventID+"/receipt", acme, "")
	require.Equal(t, http.StatusOK, code, "%s", receipt)
	assert.Contains(t, string(receipt), "— witness.test/w1 ")
	receiptFile := filepath.Join(c.base, "receipt")
	require.NoError(t, os.WriteFile(receiptFile, receipt, 0o644))
	requireCode(t, 0, runCLI(t, nil, "verify", "--receipt", receiptFile, "--vkey", acmeVkey))

	// audit export with the tenant's key carries its cosigned checkpoint.
	online := filepath.Join(t.TempDir(), "online.jsonl")
	requireCode(t, 0, runCLI(t, clientEnv(c.srv, acme), "audit", "export", "--out", online))
	onlineCp, err := os.ReadFile(online + ".checkpoint")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(onlineCp), "custos.test/tenants/acme\n"))
	assert.Contains(t, string(onlineCp), "— witness.test/w1 ")
	requireCode(t, 0, runCLI(t, nil, "verify", "--export", online, "--checkpoint", online+".checkpoint",
		"--vkey", acmeVkey, "--witness-vkey", c.w.vkey))

	// Stopped: each chain has its file; the offline export of acme
	// carries acme's.
	acmeSize := checkpointSize(t, []byte(cp))
	c.srv.stop(t)
	for _, chain := range []string{"acme", "system"} {
		kept, err := os.ReadFile(c.dir + ".cosigned." + chain)
		require.NoError(t, err, chain)
		assert.True(t, strings.HasPrefix(string(kept), "custos.test/tenants/"+chain+"\n"), "%s", kept)
		assert.Contains(t, string(kept), "— witness.test/w1 ")
	}
	assert.True(t, strings.HasPrefix(readFile(t, c.dir+".cosigned"), "custos.test/tenants/default\n"), "DATA.cosigned stays chain default's")
	out := filepath.Join(t.TempDir(), "acme.jsonl")
	requireCode(t, 0, runCLI(t, nil, "export", "--data", c.dir, "--chain", "acme", "--out", out))
	assert.Equal(t, readFile(t, c.dir+".cosigned.acme"), readFile(t, out+".checkpoint"))
	report := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint",
		"--vkey", acmeVkey, "--witness-vkey", c.w.vkey)))
	assert.Equal(t, true, report["checkpoint"].(map[string]any)["contained"])
	requireCode(t, 2, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint",
		"--vkey", c.vkeyFile, "--witness-vkey", c.w.vkey)) // the deployment key does not open a tenant's checkpoint

	// An older copy of the folder, then acme grows and is cosigned.
	older := filepath.Join(c.base, "older")
	require.NoError(t, os.CopyFS(older, os.DirFS(c.dir)))
	srv := startServerWith(t, c.dir, nil, witnessArgs...)
	for _, name := range []string{"p2", "p3"} {
		code, body := srv.do(t, http.MethodPost, "/v1/policies", acme, `{"name":"`+name+`","agent_role":"loan_officer","allowed_sources":["crm"]}`)
		require.Equal(t, http.StatusCreated, code, "%s", body)
	}
	grown := cosignedOf(t, srv, acme, acmeSize+2)
	srv.stop(t)
	require.Equal(t, grown, readFile(t, c.dir+".cosigned.acme"))

	require.NoError(t, os.RemoveAll(c.dir))
	require.NoError(t, os.Rename(older, c.dir))
	failed := requireCode(t, 1, refusedServe(t, append([]string{"--data", c.dir, "--addr", freeAddr(t)}, witnessArgs...)...))
	assert.Contains(t, failed.stderr, "chain acme: ")
	assert.Contains(t, failed.stderr, "contradicts its latest cosigned checkpoint")
	assert.Contains(t, failed.stderr, "truncated")
	assert.NotContains(t, failed.stderr, "chain default: ", "chain default was not touched")
	assert.NotContains(t, failed.stderr, "chain system: ", "chain system was not touched")

	// Without the kept file the witness, ahead of the log, still refuses.
	require.NoError(t, os.Remove(c.dir+".cosigned.acme"))
	failed = requireCode(t, 1, refusedServe(t, append([]string{"--data", c.dir, "--addr", freeAddr(t)}, witnessArgs...)...))
	assert.Contains(t, failed.stderr, "chain acme: ")
	assert.Contains(t, failed.stderr, "the witness holds size "+strconv.FormatUint(checkpointSize(t, []byte(grown)), 10))
	assert.Contains(t, failed.stderr, c.w.url)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
