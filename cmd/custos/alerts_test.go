package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/projections/alerting/webhook"
)

func TestAlertsValidate(t *testing.T) {
	t.Parallel()
	good := runCLI(t, nil, "alerts", "validate", "../internal/alertfile/testdata/good.yaml")
	require.Equal(t, 0, good.code, good.stderr)
	assert.Contains(t, good.stdout, "4 rules and 1 webhooks valid")
	bad := runCLI(t, nil, "alerts", "validate", "../internal/alertfile/testdata/mistakes.yaml")
	assert.Equal(t, 1, bad.code)
	assert.Contains(t, bad.stderr, "mistakes.yaml:4: rules[0].group_by: must be one of")
	assert.Contains(t, bad.stderr, "mistakes.yaml:13: webhooks[0].secret_env")
	missing := runCLI(t, nil, "alerts", "validate", "no-such-file.yaml")
	assert.Equal(t, 2, missing.code)
}

// TestServeDeliversASignedAlert runs the real binary with an alerts file
// and a webhook: invalid keys presented past the rule's threshold reach a
// real receiver as a signed alert, and GET /v1/alerts lists it.
func TestServeDeliversASignedAlert(t *testing.T) {
	t.Parallel()
	const secret = "whsec_serve"
	var mu sync.Mutex
	var bodies [][]byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if webhook.Verify([]byte(secret), r.Header.Get(webhook.SignatureHeader), b, time.Now(), time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	file := filepath.Join(t.TempDir(), "alerts.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`rules:
  - rule_id: probing
    kind: invalid_key
    group_by: remote_addr
    threshold: 3
    window: 1m
`), 0o600))
	s := startServerWith(t, filepath.Join(t.TempDir(), "data"), []string{"CUSTOS_WEBHOOK_SECRET=" + secret},
		"--alerts", file, "--webhook", recv.URL)
	admin := adminKeyOf(t, s)
	time.Sleep(1500 * time.Millisecond) // the engine takes the rule within a check interval
	for range 3 {
		code, _ := s.do(t, http.MethodGet, "/v1/keys", "cst_not_a_key", "")
		require.Equal(t, http.StatusForbidden, code)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 1
	}, 15*time.Second, 20*time.Millisecond)
	var a map[string]any
	mu.Lock()
	require.NoError(t, json.Unmarshal(bodies[0], &a))
	mu.Unlock()
	assert.Equal(t, "invalid_key", a["kind"])
	assert.Equal(t, "remote_addr:127.0.0.1", a["subject"])
	code, body := s.do(t, http.MethodGet, "/v1/alerts", admin, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"rule_id":"probing"`)
	s.stop(t)
}

// TestEveryTenantsRulesRaiseTheirOwnAlerts creates tenant acme on a server
// with a webhook, sets a denial_spike rule with acme's admin key and makes
// acme's agent be denied: the alert reaches the receiver, is on acme's
// chain and in acme's GET /v1/alerts, and not in tenant default's.
func TestEveryTenantsRulesRaiseTheirOwnAlerts(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies [][]byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	s := startServerWith(t, filepath.Join(t.TempDir(), "data"), []string{"CUSTOS_WEBHOOK_SECRET=whsec_tenants"}, "--webhook", recv.URL)
	admin, super := adminKeyOf(t, s), superadminKeyOf(t, s)
	acme := createTenant(t, s, super, "acme")
	code, body := s.do(t, http.MethodPost, "/v1/alerts/rules", acme,
		`{"rule_id":"denials","kind":"denial_spike","group_by":"role","threshold":2,"window":"1m"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	time.Sleep(1500 * time.Millisecond) // the engine takes the rule within a check interval
	for range 2 {                       // no policy for the role: DENY
		code, body = s.do(t, http.MethodPost, "/v1/context/evaluate", acme,
			`{"agent_role":"analyst","agent_id":"a-1","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"s"}`)
		require.Equal(t, http.StatusOK, code, "%s", body)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 1
	}, 15*time.Second, 20*time.Millisecond)
	mu.Lock()
	assert.Contains(t, string(bodies[0]), `"rule_id":"denials"`)
	mu.Unlock()
	require.Eventually(t, func() bool {
		code, body = s.do(t, http.MethodGet, "/v1/alerts", acme, "")
		return code == http.StatusOK && strings.Contains(string(body), `"rule_id":"denials"`)
	}, 5*time.Second, 20*time.Millisecond)
	code, body = s.do(t, http.MethodGet, "/v1/alerts", admin, "")
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, string(body), `"rule_id":"denials"`, "tenant default sees none of acme's alerts")
	s.stop(t)
}
