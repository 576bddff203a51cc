package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestAuditCommandsEscapeControlCharacters puts a decision whose source_id
// and reason carry ESC sequences into the log, as a server before the
// character rule accepted them, and checks that audit events and audit
// session against a real server print them escaped, while -o json stays
// exact JSON.
func TestAuditCommandsEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	admin := adminKeyOf(t, srv)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/policies", `{"name":"lending","agent_role":"loan_officer","allowed_sources":["crm"]}`},
		{http.MethodPost, "/v1/agents", `{"agent_id":"loan-agent","agent_role":"loan_officer"}`},
		{http.MethodPatch, "/v1/agents/loan-agent/status", `{"status":"approved"}`},
	} {
		code, body := srv.do(t, c.method, c.path, admin, c.body)
		require.Less(t, code, 300, "%s %s: %s", c.method, c.path, body)
	}
	code, body := srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name":"old-client","scope":"evaluate"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct{ Key string }
	require.NoError(t, json.Unmarshal(body, &created))
	// Today's server refuses the source_id...
	evil := "crm\x1b[31mALLOWED\x1b[0m\u202e"
	req, err := json.Marshal(map[string]string{"agent_role": "loan_officer", "agent_id": "loan-agent", "user_id": "u", "source_id": evil,
		"sensitivity_level": "low", "session_id": "sess-esc"})
	require.NoError(t, err)
	code, body = srv.do(t, http.MethodPost, "/v1/context/evaluate", created.Key, string(req))
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	assert.Contains(t, string(body), "source_id must not contain control characters (U+001B at byte 3)")
	srv.stop(t)

	// ...so write the record as an older server would have: through the
	// Ledger, without the HTTP layer's checks.
	store, err := eventstore.Open(eventstore.Options{Dir: dir, Signer: signerOf(t, dir)})
	require.NoError(t, err)
	ledger, err := writeside.Open(context.Background(), writeside.Config{Store: store})
	require.NoError(t, err)
	caller, err := ledger.Authenticate(created.Key)
	require.NoError(t, err)
	_, _, err = ledger.Evaluate(context.Background(), caller, policy.Request{AgentRole: "loan_officer", AgentID: "loan-agent", UserID: "u",
		SourceID: evil, Sensitivity: policy.LevelLow, SessionID: "sess-esc"})
	require.NoError(t, err)
	require.NoError(t, ledger.Close())
	require.NoError(t, store.Close())

	srv = startServer(t, dir)
	t.Cleanup(func() { srv.stop(t) })
	env := clientEnv(srv, admin)
	const shown = `crm\x1b[31mALLOWED\x1b[0m\u202e`
	for _, args := range [][]string{
		{"audit", "events", "--type", "decision.made"},
		{"audit", "events", "--type", "decision.made", "--all"},
		{"audit", "session", "sess-esc"},
	} {
		r := requireCode(t, 0, runCLI(t, env, args...))
		assert.Contains(t, r.stdout, shown, "%v", args)
		assert.NotContains(t, r.stdout, "\x1b", "%v: no raw ESC reaches the terminal", args)
		assert.NotContains(t, r.stdout, "\u202e", "%v: no raw bidi override", args)
	}
	// JSON output stays exact: it decodes to the stored value.
	r := requireCode(t, 0, runCLI(t, env, "audit", "events", "--type", "decision.made", "-o", "json"))
	assert.NotContains(t, r.stdout, "\x1b")
	var page struct {
		Events []struct {
			Payload struct {
				Request struct {
					SourceID string `json:"source_id"`
				} `json:"request"`
			} `json:"payload"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Events, 1)
	assert.Equal(t, evil, page.Events[0].Payload.Request.SourceID)

	// A server detail that echoes the value is escaped too.
	r = runCLI(t, env, "audit", "session", "sess-\x1b[2J")
	assert.Equal(t, 2, r.code, "%s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "400 Bad Request")
	assert.NotContains(t, r.stderr, "\x1b")
}
