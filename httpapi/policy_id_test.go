package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAgentBoundByPolicyID binds an agent of a role with two policies by
// policy_id over HTTP: its decisions come from that policy (resolution
// "bound"), a dangling id is accepted with a warning, and an id created
// later takes effect with no change to the agent.
func TestAgentBoundByPolicyID(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	post := func(path, body string) map[string]any {
		t.Helper()
		r := s.postJSON(t, path, s.admin, body)
		require.Equal(t, http.StatusCreated, r.status, "%s %s", path, r.body)
		return r.object(t)
	}
	post("/v1/policies", `{"name": "retail", "agent_role": "teller", "allowed_sources": ["crm"]}`)
	vip := post("/v1/policies", `{"name": "vip", "policy_id": "pol_vip", "agent_role": "teller", "allowed_sources": ["crm", "vault"]}`)
	require.Equal(t, "pol_vip", vip["policy_id"])

	bound := post("/v1/agents", `{"agent_id": "t-1", "agent_role": "teller", "policy_id": "pol_vip"}`)
	assert.Equal(t, "pol_vip", bound["policy_id"])
	assert.Equal(t, []any{}, bound["warnings"])
	dangling := post("/v1/agents", `{"agent_id": "t-2", "agent_role": "teller", "policy_id": "pol_later"}`)
	require.Len(t, dangling["warnings"], 1)
	assert.Contains(t, dangling["warnings"].([]any)[0], "policy_id 'pol_later' names no policy yet")
	for _, id := range []string{"t-1", "t-2"} {
		r := s.do(t, request{method: http.MethodPatch, path: "/v1/agents/" + id + "/status", key: s.admin, body: `{"status": "approved"}`})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	}
	key := post("/v1/keys", `{"name": "tellers", "scope": "evaluate"}`)["key"].(string)
	eval := func(agent, session string) map[string]any {
		t.Helper()
		r := s.postJSON(t, "/v1/context/evaluate", key, `{"agent_role": "teller", "agent_id": "`+agent+
			`", "user_id": "u", "source_id": "vault", "sensitivity_level": "low", "session_id": "`+session+`"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		return r.object(t)
	}
	d := eval("t-1", "s-1")
	assert.Equal(t, "ALLOW", d["decision"])
	assert.Equal(t, "vip", d["policy_name"])
	assert.Equal(t, "bound", d["policy_resolution"])

	d = eval("t-2", "s-2")
	assert.Equal(t, "DENY", d["decision"])
	assert.Equal(t, "policy_ambiguous", d["policy_name"])

	post("/v1/policies", `{"name": "later", "policy_id": "pol_later", "agent_role": "teller", "allowed_sources": ["vault"]}`)
	d = eval("t-2", "s-3")
	assert.Equal(t, "ALLOW", d["decision"])
	assert.Equal(t, "later", d["policy_name"])
	assert.Equal(t, "bound", d["policy_resolution"])
}
