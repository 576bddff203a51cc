package httpapi_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogsNeverHoldKeys runs a full session with every logger (store,
// Ledger, HTTP) writing to one buffer and checks that no plaintext key, no
// key hash and no presented X-API-Key value appears in it, while the access
// log does record every request.
func TestLogsNeverHoldKeys(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	secrets := []string{s.admin}
	remember := func(m map[string]any) string {
		k := m["key"].(string)
		secrets = append(secrets, k)
		return k
	}

	reader := s.mustCreate(t, `{"name":"reader","scope":"read"}`)
	readerKey := remember(reader)
	agentKey := remember(s.mustCreate(t, `{"name":"agent","scope":"evaluate","agent_id":"a-1"}`))
	admin2 := s.mustCreate(t, `{"name":"admin2","scope":"admin"}`)
	admin2Key := remember(admin2)

	requests := 3
	for _, k := range []string{readerKey, agentKey, admin2Key, s.admin} {
		s.get(t, "/v1/keys", k)
		s.get(t, "/v1/keys/"+reader["key_id"].(string), k)
		s.get(t, "/v1/audit/verify", k)
		requests += 3
	}
	s.clock.Advance(2 * time.Minute)
	r := s.postJSON(t, "/v1/keys/"+reader["key_id"].(string)+"/rotate", admin2Key, `{"grace_seconds":30}`)
	require.Equal(t, http.StatusCreated, r.status)
	newReader := remember(r.object(t))
	s.get(t, "/v1/keys", readerKey)
	s.get(t, "/v1/keys", newReader)
	require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+admin2["key_id"].(string), s.admin).status)
	s.get(t, "/v1/keys", admin2Key)
	requests += 5

	// Evaluations: a decision, one with a key pasted into the query (the
	// body is never logged) and one with a bad key; then a public scrape.
	eval := func(key, query string) int {
		return s.postJSON(t, "/v1/context/evaluate", key, `{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u",`+
			`"source_id":"crm","sensitivity_level":"low","session_id":"logs-1","query":"`+query+`"}`).status
	}
	require.Equal(t, http.StatusOK, eval(agentKey, "income"))
	require.Equal(t, http.StatusOK, eval(s.admin, "my key is "+readerKey))
	require.Equal(t, http.StatusForbidden, eval(breakChecksum(agentKey), "x"))
	secrets = append(secrets, breakChecksum(agentKey))
	scraped := s.get(t, "/metrics", "")
	require.Equal(t, http.StatusOK, scraped.status)
	requests += 4

	// Bad credentials: each presented value must stay out of the log too.
	presented := []string{breakChecksum(readerKey), "cst_" + strings.Repeat("Z", 49), "garbage-value-123"}
	for _, p := range presented {
		s.get(t, "/v1/keys", p)
		requests++
	}
	secrets = append(secrets, presented...)
	s.postJSON(t, "/v1/keys", s.admin, `{"name":"`+readerKey+`","scope":"nope"}`) // a key inside a rejected body
	requests++

	// A failing store logs the cause of the 503.
	require.NoError(t, s.store.Close())
	r = s.postJSON(t, "/v1/keys", s.admin, `{"name":"late","scope":"read"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	requests++
	s.close()

	logs := s.logs.String()
	for _, k := range secrets {
		h := sha256.Sum256([]byte(k))
		assert.NotContains(t, string(scraped.body), k[4:], "key body in the public metrics")
		assert.NotContains(t, string(scraped.body), hex.EncodeToString(h[:]), "key hash in the public metrics")
		assert.NotContains(t, logs, k, "plaintext key %s... in the log", k[:8])
		assert.NotContains(t, logs, k[4:], "key body in the log")
		assert.NotContains(t, logs, hex.EncodeToString(h[:]), "key hash in the log")
		assert.NotContains(t, strings.ToLower(logs), strings.ToLower(hex.EncodeToString(h[:])))
	}

	// The access log has one line per request with the documented fields.
	var access, failures int
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "log line %s", sc.Text())
		switch line["msg"] {
		case "http request":
			access++
			for _, f := range []string{"method", "route", "status", "latency", "request_id", "key_id"} {
				assert.Contains(t, line, f)
			}
		case "request failed":
			failures++
			assert.Contains(t, line["err"], "eventstore: store closed")
		}
	}
	assert.Equal(t, requests, access)
	assert.Equal(t, 1, failures)
	assert.Contains(t, logs, `"key_id":"`+admin2["key_id"].(string)+`"`)
	assert.Contains(t, logs, `"route":"/v1/keys/:key_id/rotate"`)
}

// TestAccessLogLevels checks what an operator at the default level sees:
// answered evaluations are in the chain and log only at debug, a rejected
// evaluation and every other request log at info.
func TestAccessLogLevels(t *testing.T) {
	t.Parallel()
	s := newStack(t, withLogLevel(slog.LevelInfo))
	agentKey := s.mustCreate(t, `{"name":"agent","scope":"evaluate","agent_id":"a-1"}`)["key"].(string)
	body := `{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u","source_id":"crm",` +
		`"sensitivity_level":"low","session_id":"levels-1","query":"q"}`
	require.Equal(t, http.StatusOK, s.postJSON(t, "/v1/context/evaluate", agentKey, body).status)
	require.Equal(t, http.StatusBadRequest, s.postJSON(t, "/v1/context/evaluate", agentKey, `{"agent_role":1}`).status)
	require.Equal(t, http.StatusOK, s.get(t, "/v1/keys", s.admin).status)
	s.close()

	var statuses []string
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		if line["msg"] == "http request" {
			statuses = append(statuses, fmt.Sprintf("%v %v", line["route"], line["status"]))
		}
	}
	require.Equal(t, []string{"/v1/keys 201", "/v1/context/evaluate 400", "/v1/keys 200"}, statuses)
}
