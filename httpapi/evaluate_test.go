package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
)

// lendingPolicy is an AutoPIL-style policy for the loan_officer role.
const lendingPolicy = `{
  "name": "lending-policy", "agent_role": "loan_officer",
  "allowed_sources": ["crm", "credit_bureau", "core_banking"],
  "denied_sources": ["hr_records"],
  "allowed_tasks": ["loan_review", "kyc"],
  "task_bindings": [{"task": "kyc", "permitted_sources": ["crm"]}],
  "max_sensitivity": "high",
  "require_task_for_sensitivity": "high",
  "session_ttl_minutes": 60,
  "sensitivity_decay": [{"after_minutes": 30, "max_sensitivity": "medium"}]
}`

// evalStack is a stack with the lending policy, an approved agent and an
// evaluate key bound to it.
type evalStack struct {
	*stack
	policyID string
	agentKey string
}

func newEvalStack(t *testing.T, opts ...stackOption) *evalStack {
	t.Helper()
	s := newStack(t, opts...)
	r := s.postJSON(t, "/v1/policies", s.admin, lendingPolicy)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	e := &evalStack{stack: s, policyID: r.object(t)["policy_id"].(string)}
	e.approve(t, "loan-agent")
	created := s.mustCreate(t, `{"name":"loan-agent-prod","scope":"evaluate","agent_id":"loan-agent"}`)
	e.agentKey = created["key"].(string)
	return e
}

func (e *evalStack) approve(t *testing.T, agent string) {
	t.Helper()
	r := e.do(t, request{method: http.MethodPatch, path: "/v1/agents/" + agent + "/status", key: e.admin, body: `{"status":"approved"}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
}

func (e *evalStack) evaluate(t *testing.T, key, body string) response {
	t.Helper()
	return e.postJSON(t, "/v1/context/evaluate", key, body)
}

func evalBody(session, source, level, task string) string {
	taskJSON := "null"
	if task != "" {
		taskJSON = fmt.Sprintf("%q", task)
	}
	return fmt.Sprintf(`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-7","source_id":%q,
		"sensitivity_level":%q,"session_id":%q,"task_type":%s,"action":null,"query":"income of applicant 42"}`,
		source, level, session, taskJSON)
}

func TestEvaluateAnswersAndRecordsEveryDecision(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	cases := []struct {
		name, body         string
		decision, reason   string
		policyName, denial string
	}{
		{"allow", evalBody("s-1", "crm", "medium", "loan_review"), "ALLOW", "Access granted", "lending-policy", ""},
		{"explicitly denied source", evalBody("s-2", "hr_records", "low", ""), "DENY",
			"Source 'hr_records' is explicitly denied for role 'loan_officer'", "lending-policy", "policy"},
		{"task binding before allowed sources", evalBody("s-3", "core_banking", "low", "kyc"), "DENY",
			"Task 'kyc' is not permitted to access source 'core_banking' — permitted: ['crm']", "lending-policy", "policy"},
		{"task required at the threshold", evalBody("s-4", "crm", "high", ""), "DENY",
			"A task_type is required for sensitivity 'high' for role 'loan_officer' (threshold: 'high')", "lending-policy", "policy"},
		{"above the ceiling", evalBody("s-5", "crm", "critical", "loan_review"), "DENY",
			"Sensitivity 'critical' exceeds ceiling 'high' for role 'loan_officer'", "lending-policy", "policy"},
		{"task not allowed", evalBody("s-6", "crm", "low", "marketing"), "DENY",
			"Task 'marketing' is not in the allowed task list for role 'loan_officer'", "lending-policy", "policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.evaluate(t, e.agentKey, tc.body)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			m := r.object(t)
			assert.Equal(t, tc.decision, m["decision"])
			assert.Equal(t, tc.reason, m["reason"])
			assert.Equal(t, tc.policyName, m["policy_name"])
			assert.Equal(t, e.policyID, m["policy_id"])
			assert.EqualValues(t, 1, m["policy_version"])
			if tc.denial == "" {
				assert.NotContains(t, m, "denial_type")
			} else {
				assert.Equal(t, tc.denial, m["denial_type"])
			}
			assert.NotEmpty(t, m["event_id"])
			assert.NotEmpty(t, m["evaluated_at"])

			// The answer's event is on the chain, durable, with the request,
			// the policy version and the calling key.
			rec, err := e.store.Get(context.Background(), eventstore.DefaultChain, uint64(m["seq"].(float64)))
			require.NoError(t, err)
			assert.Equal(t, m["event_id"], rec.ID)
			made, err := decision.Decode(rec.Type, rec.Payload)
			require.NoError(t, err)
			assert.Equal(t, tc.decision, made.Decision)
			assert.Equal(t, tc.reason, made.Reason)
			assert.Equal(t, 1, made.PolicyVersion)
			assert.Equal(t, "u-7", made.Request.UserID)
			assert.Equal(t, "income of applicant 42", made.Request.Query)
			assert.NotEmpty(t, made.KeyID)
			assert.Equal(t, made.KeyID, rec.Actor)
		})
	}
}

func TestEvaluateRejectsMalformedRequests(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	before := e.head(t)
	cases := []struct {
		name, body string
		status     int
		want       []string
	}{
		{"missing required fields", `{"agent_id":"loan-agent","agent_role":null}`, 422,
			[]string{"agent_role is required", "user_id is required", "source_id is required", "session_id is required", "sensitivity_level is required"}},
		{"unknown sensitivity", `{"agent_role":"r","user_id":"u","source_id":"s","session_id":"x","sensitivity_level":"secret"}`, 422,
			[]string{"sensitivity_level must be one of low, medium, high, critical"}},
		{"unknown action", `{"agent_role":"r","user_id":"u","source_id":"s","session_id":"x","sensitivity_level":"low","action":"exec"}`, 422,
			[]string{"action must be one of read, write, delete"}},
		{"wrong type", `{"agent_role":1}`, 400, []string{"agent_role"}},
		{"unknown field", `{"agent_role":"r","colour":"blue"}`, 400, []string{"colour"}},
	}
	for _, tc := range cases {
		r := e.evaluate(t, e.agentKey, tc.body)
		require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.body)
		for _, w := range tc.want {
			assert.Contains(t, r.detail(t), w, tc.name)
		}
	}
	assert.Equal(t, before, e.head(t), "a rejected evaluation appends nothing")
}

func TestEvaluateIdentityAndReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	body := evalBody("rw-1", "crm", "low", "")
	require.Equal(t, "ALLOW", e.evaluate(t, e.agentKey, body).object(t)["decision"])

	// Suspension takes effect on the very next call.
	r := e.do(t, request{method: http.MethodPatch, path: "/v1/agents/loan-agent/status", key: e.admin, body: `{"status":"suspended"}`})
	require.Equal(t, http.StatusOK, r.status)
	m := e.evaluate(t, e.agentKey, body).object(t)
	assert.Equal(t, "DENY", m["decision"])
	assert.Equal(t, "agent_not_approved", m["policy_name"])
	assert.Equal(t, "identity", m["denial_type"])
	assert.Equal(t, "Agent 'loan-agent' is not approved (status: 'suspended')", m["reason"])

	// A key bound to loan-agent cannot speak for another agent.
	other := `{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"rw-2"}`
	m = e.evaluate(t, e.agentKey, other).object(t)
	assert.Equal(t, "key_agent_mismatch", m["policy_name"])
	assert.Equal(t, "Key is bound to agent 'loan-agent', not 'a-1'", m["reason"])
	assert.Equal(t, "identity", m["denial_type"])

	// Rebinding an agent to another policy applies to its next evaluation.
	e.approve(t, "a-1")
	r = e.postJSON(t, "/v1/policies", e.admin, `{"name":"vault-only","agent_role":"vault_reader","allowed_sources":["vault"]}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	vault := `{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u","source_id":"vault","sensitivity_level":"low","session_id":"rw-3"}`
	assert.Equal(t, "DENY", e.evaluate(t, e.admin, vault).object(t)["decision"])
	r = e.do(t, request{method: http.MethodPut, path: "/v1/agents/a-1", key: e.admin, body: `{"policy_name":"vault-only"}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m = e.evaluate(t, e.admin, vault).object(t)
	assert.Equal(t, "ALLOW", m["decision"])
	assert.Equal(t, "vault-only", m["policy_name"])
}

// TestTwoRolesRaceForAFreshSession starts both requests together many times:
// exactly one role owns each session, the other is isolated, and the chain
// shows the owner's decision first.
func TestTwoRolesRaceForAFreshSession(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	r := e.postJSON(t, "/v1/policies", e.admin, `{"name":"auditor-policy","agent_role":"auditor","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = e.postJSON(t, "/v1/agents", e.admin, `{"agent_id":"aud-1","agent_role":"auditor"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	e.approve(t, "aud-1")

	for i := range 20 {
		session := fmt.Sprintf("race-session-%d", i)
		bodies := map[string]string{
			"loan_officer": evalBody(session, "crm", "low", ""),
			"auditor":      fmt.Sprintf(`{"agent_role":"auditor","agent_id":"aud-1","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":%q}`, session),
		}
		results := map[string]map[string]any{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for role, body := range bodies {
			wg.Go(func() {
				m := e.evaluate(t, e.admin, body).object(t)
				mu.Lock()
				results[role] = m
				mu.Unlock()
			})
		}
		wg.Wait()
		var owner, loser string
		for role, m := range results {
			if m["decision"] == "ALLOW" {
				owner = role
			} else {
				loser = role
			}
		}
		require.NotEmpty(t, owner, "one role owns %s: %v", session, results)
		require.NotEmpty(t, loser, "the other is isolated: %v", results)
		assert.Equal(t, "cross_agent_isolation", results[loser]["policy_name"])
		assert.Equal(t, fmt.Sprintf("Session '%s…' is owned by '%s' — '%s' cannot access another agent's context", session[:8], owner, loser),
			results[loser]["reason"])
		assert.Less(t, results[owner]["seq"].(float64), results[loser]["seq"].(float64), "the owner's decision comes first on the chain")

		trail := e.get(t, "/v1/audit/sessions/"+session, e.admin)
		require.Equal(t, http.StatusOK, trail.status)
		tm := trail.object(t)
		assert.Equal(t, owner, tm["owner_role"])
		assert.EqualValues(t, 2, tm["total_events"])
	}
}

func TestEvaluateSessionTrailAndTTL(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	const session = "6a4db3cf-1f0e-4c55"
	e.evaluate(t, e.agentKey, evalBody(session, "crm", "low", ""))
	e.clock.Advance(29 * time.Minute)
	e.evaluate(t, e.agentKey, evalBody(session, "hr_records", "low", ""))
	e.clock.Advance(time.Minute) // 30 minutes: decay to medium
	m := e.evaluate(t, e.agentKey, evalBody(session, "crm", "high", "loan_review")).object(t)
	assert.Equal(t, "Sensitivity 'high' exceeds effective ceiling 'medium' for role 'loan_officer' (sensitivity_decay after 30 minutes)", m["reason"])
	e.clock.Advance(30 * time.Minute) // 60 minutes: expired
	m = e.evaluate(t, e.agentKey, evalBody(session, "crm", "low", "")).object(t)
	assert.Equal(t, "session_expired", m["policy_name"])
	assert.Equal(t, "Session '6a4db3cf…' has expired", m["reason"])
	assert.Equal(t, "session", m["denial_type"])

	trail := e.get(t, "/v1/audit/sessions/"+session, e.admin)
	require.Equal(t, http.StatusOK, trail.status)
	tm := trail.object(t)
	assert.Equal(t, "loan_officer", tm["owner_role"])
	assert.Equal(t, "loan-agent", tm["owner_agent_id"])
	assert.EqualValues(t, 4, tm["total_events"])
	assert.EqualValues(t, 1, tm["allowed"])
	assert.EqualValues(t, 3, tm["denied"])
	assert.Equal(t, []any{"crm"}, tm["sources_accessed"])
	events := tm["events"].([]any)
	require.Len(t, events, 4)
	first := events[0].(map[string]any)
	assert.Equal(t, "ALLOW", first["decision"])
	assert.Equal(t, "crm", first["source_id"])
	assert.Equal(t, "lending-policy", first["policy_name"])
	assert.Equal(t, "Access granted", first["reason"])

	assert.Equal(t, http.StatusNotFound, e.get(t, "/v1/audit/sessions/never-seen", e.admin).status)

	// A restart restores the session exactly: still expired, same trail.
	e.restart()
	m = e.evaluate(t, e.agentKey, evalBody(session, "crm", "low", "")).object(t)
	assert.Equal(t, "Session '6a4db3cf…' has expired", m["reason"])
	again := e.get(t, "/v1/audit/sessions/"+session, e.admin).object(t)
	assert.EqualValues(t, 5, again["total_events"])
}

func TestEvaluateWithAFailedStoreWithholdsTheDecision(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	require.NoError(t, e.store.Close())
	r := e.evaluate(t, e.agentKey, evalBody("fail-1", "crm", "low", ""))
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.JSONEq(t, `{"detail":"audit log unavailable; decision withheld"}`, string(r.body))
}
