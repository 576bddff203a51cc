package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiAgent is GET /v1/agents/{id} as AutoPIL's clients read it.
type apiAgent struct {
	AgentID        string   `json:"agent_id"`
	AgentRole      string   `json:"agent_role"`
	Owner          *string  `json:"owner"`
	Framework      *string  `json:"framework"`
	PolicyName     *string  `json:"policy_name"`
	PermittedRoles []string `json:"permitted_roles"`
	Status         string   `json:"status"`
	Warnings       []string `json:"warnings"`
}

// apiDecision is the evaluate answer.
type apiDecision struct {
	Decision         string  `json:"decision"`
	Reason           string  `json:"reason"`
	PolicyName       string  `json:"policy_name"`
	PolicyID         *string `json:"policy_id"`
	PolicyVersion    *int    `json:"policy_version"`
	PolicyResolution *string `json:"policy_resolution"`
	DenialType       string  `json:"denial_type"`
	SessionID        string  `json:"session_id"`
}

func decodeInto[T any](t *testing.T, r response, status int) T {
	t.Helper()
	require.Equal(t, status, r.status, "body %s", r.body)
	var v T
	require.NoError(t, json.Unmarshal(r.body, &v), "body %s", r.body)
	return v
}

// TestAutoPILClientSequence drives, over real HTTP against a real store,
// what AutoPIL's hosted-API clients do: ensure_policy adds a second, named
// policy for a role that already has one; agents are registered pinned to
// a policy by name (one pins a name that exists nowhere yet); the bootstrap
// lists agents by framework and owner and approves the drafts; agents
// evaluate; an agent is DELETEd and the bootstrap runs again.
func TestAutoPILClientSequence(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.admin
	patch := func(path, body string) response {
		return s.do(t, request{method: http.MethodPatch, path: path, key: admin, body: body})
	}
	evaluate := func(agentID, role, source, session string) apiDecision {
		t.Helper()
		body, err := json.Marshal(map[string]string{
			"agent_role": role, "agent_id": agentID, "user_id": "pharmacist-7", "source_id": source,
			"sensitivity_level": "medium", "session_id": session,
		})
		require.NoError(t, err)
		return decodeInto[apiDecision](t, s.postJSON(t, "/v1/context/evaluate", admin, string(body)), http.StatusOK)
	}

	// The policy file's policy for the role, then ensure_policy's second one.
	r := s.postJSON(t, "/v1/policies", admin, `{"name": "dispensing-policy", "agent_role": "dispensing_agent",
		"allowed_sources": ["formulary"], "denied_sources": [], "allowed_tasks": []}`)
	first := decodeInto[map[string]any](t, r, http.StatusCreated)
	assert.Equal(t, []any{}, first["denied_sources"], "an empty list given is served back")
	assert.Equal(t, []any{}, first["allowed_tasks"])
	assert.NotContains(t, first, "denied_tasks", "an absent list stays absent")
	r = s.postJSON(t, "/v1/policies", admin, `{"name": "dispensing-saas", "agent_role": "dispensing_agent",
		"allowed_sources": ["formulary", "prescriptions"]}`)
	second := decodeInto[map[string]any](t, r, http.StatusCreated)
	assert.Equal(t, "dispensing_agent", second["agent_role"])
	r = s.postJSON(t, "/v1/policies", admin, `{"name": "dispensing-saas", "agent_role": "other_role"}`)
	require.Equal(t, http.StatusConflict, r.status, "names stay unique: %s", r.body)
	assert.Contains(t, r.detail(t), "duplicate name 'dispensing-saas'")
	var listed []map[string]any
	listed = decodeInto[[]map[string]any](t, s.get(t, "/v1/policies", admin), http.StatusOK)
	require.Len(t, listed, 2)
	assert.Equal(t, "dispensing-policy", listed[0]["name"])
	assert.Equal(t, []any{}, listed[0]["denied_sources"])

	// Agents pinned by name: to an existing policy, and to one that exists
	// nowhere yet (AutoPIL's trial tenant). permitted_roles lists the own
	// role, as AutoPIL's files do.
	r = s.postJSON(t, "/v1/agents", admin, `{"agent_role": "dispensing_agent", "owner": "pharmacy", "framework": "langgraph",
		"policy_name": "dispensing-saas", "permitted_roles": ["rx_verification_agent", "dispensing_agent"]}`)
	pinned := decodeInto[apiAgent](t, r, http.StatusCreated)
	assert.Regexp(t, `^agent_[0-9A-Z]{26}$`, pinned.AgentID)
	assert.Equal(t, "draft", pinned.Status)
	assert.Equal(t, ptr("dispensing-saas"), pinned.PolicyName)
	assert.Equal(t, []string{"rx_verification_agent", "dispensing_agent"}, pinned.PermittedRoles)
	assert.Equal(t, []string{}, pinned.Warnings)
	r = s.postJSON(t, "/v1/agents", admin, `{"agent_role": "dispensing_agent", "owner": "pharmacy", "framework": "langgraph",
		"policy_name": "trial-dispensing"}`)
	dangling := decodeInto[apiAgent](t, r, http.StatusCreated)
	danglingWarning := "policy_name 'trial-dispensing' names no policy yet; until a policy of that name exists, " +
		"role 'dispensing_agent' has 2 policies, so its requests are denied (policy_ambiguous)"
	assert.Equal(t, []string{danglingWarning}, dangling.Warnings)
	assert.Equal(t, ptr("trial-dispensing"), dangling.PolicyName)
	r = s.postJSON(t, "/v1/agents", admin, `{"agent_role": "dispensing_agent", "owner": "pharmacy", "framework": "crewai",
		"policy_name": "dispensing-policy"}`)
	decodeInto[apiAgent](t, r, http.StatusCreated)

	got := decodeInto[apiAgent](t, s.get(t, "/v1/agents/"+dangling.AgentID, admin), http.StatusOK)
	assert.Equal(t, []string{danglingWarning}, got.Warnings)

	// The bootstrap: list by framework and owner, approve the drafts.
	bootstrapList := "/v1/agents?framework=langgraph&owner=pharmacy"
	list := decodeInto[[]apiAgent](t, s.get(t, bootstrapList, admin), http.StatusOK)
	require.Len(t, list, 2)
	assert.Equal(t, pinned.AgentID, list[0].AgentID)
	assert.Equal(t, dangling.AgentID, list[1].AgentID)
	assert.Equal(t, []string{danglingWarning}, list[1].Warnings)

	// Before approval: an identity denial that names the session.
	const session = "9f1c2d3e-rx-session"
	d := evaluate(pinned.AgentID, "dispensing_agent", "prescriptions", session)
	assert.Equal(t, apiDecision{Decision: "DENY", Reason: "Agent '" + pinned.AgentID + "' is not approved (status: 'draft')",
		PolicyName: "agent_not_approved", DenialType: "identity", SessionID: session}, d)

	for _, a := range list {
		approved := decodeInto[apiAgent](t, patch("/v1/agents/"+a.AgentID+"/status", `{"status": "approved"}`), http.StatusOK)
		assert.Equal(t, "approved", approved.Status)
	}

	// Bound by name: the pinned policy decides, not the role's other one.
	d = evaluate(pinned.AgentID, "dispensing_agent", "prescriptions", session)
	assert.Equal(t, "ALLOW", d.Decision)
	assert.Equal(t, "Access granted", d.Reason)
	assert.Equal(t, "dispensing-saas", d.PolicyName)
	assert.Equal(t, second["policy_id"], *d.PolicyID)
	assert.Equal(t, 1, *d.PolicyVersion)
	assert.Equal(t, ptr("bound"), d.PolicyResolution)
	d = evaluate(pinned.AgentID, "rx_verification_agent", "formulary", session)
	assert.Equal(t, "ALLOW", d.Decision, "a permitted alias, evaluated under the own role")
	d = evaluate(pinned.AgentID, "billing_agent", "formulary", session)
	assert.Equal(t, "Agent '"+pinned.AgentID+"' is not permitted to act as 'billing_agent' — permitted: ['rx_verification_agent', 'dispensing_agent']", d.Reason)
	assert.Equal(t, "role", d.DenialType)
	assert.Nil(t, d.PolicyResolution)

	// The dangling binding among two policies: ambiguous, never a guess.
	d = evaluate(dangling.AgentID, "dispensing_agent", "formulary", "s-dangling")
	assert.Equal(t, apiDecision{Decision: "DENY",
		Reason:     "Role 'dispensing_agent' has 2 policies and agent '" + dangling.AgentID + "' is bound to none of them",
		PolicyName: "policy_ambiguous", DenialType: "policy", SessionID: "s-dangling"}, d)

	// A policy created later under the pinned name takes effect at once.
	r = s.postJSON(t, "/v1/policies", admin, `{"name": "trial-dispensing", "agent_role": "dispensing_agent", "allowed_sources": ["formulary"]}`)
	trial := decodeInto[map[string]any](t, r, http.StatusCreated)
	d = evaluate(dangling.AgentID, "dispensing_agent", "formulary", "s-dangling")
	assert.Equal(t, "ALLOW", d.Decision)
	assert.Equal(t, "trial-dispensing", d.PolicyName)
	assert.Equal(t, trial["policy_id"], *d.PolicyID)
	assert.Equal(t, ptr("bound"), d.PolicyResolution)
	got = decodeInto[apiAgent](t, s.get(t, "/v1/agents/"+dangling.AgentID, admin), http.StatusOK)
	assert.Equal(t, []string{}, got.Warnings)
	assert.Equal(t, ptr("trial-dispensing"), got.PolicyName, "the agent itself never changed")

	// The session's trail holds the identity denial before its first ALLOW.
	trail := decodeInto[map[string]any](t, s.get(t, "/v1/audit/sessions/"+session, admin), http.StatusOK)
	assert.Equal(t, "dispensing_agent", trail["owner_role"])
	assert.Equal(t, pinned.AgentID, trail["owner_agent_id"])
	assert.EqualValues(t, 4, trail["total_events"])
	assert.EqualValues(t, 2, trail["allowed"])
	assert.EqualValues(t, 2, trail["denied"])
	events := trail["events"].([]any)
	require.Len(t, events, 4)
	var names []string
	for _, e := range events {
		names = append(names, e.(map[string]any)["policy_name"].(string))
	}
	assert.Equal(t, []string{"agent_not_approved", "dispensing-saas", "dispensing-saas", "role_not_permitted"}, names)
	assert.Equal(t, "bound", events[1].(map[string]any)["policy_resolution"])

	// DELETE retires the agent and keeps it for history.
	s.clock.Advance(time.Minute)
	beforeRetire := s.clock.Now()
	s.clock.Advance(time.Minute)
	retired := decodeInto[apiAgent](t, s.del(t, "/v1/agents/"+pinned.AgentID, admin), http.StatusOK)
	assert.Equal(t, "retired", retired.Status)
	list = decodeInto[[]apiAgent](t, s.get(t, bootstrapList, admin), http.StatusOK)
	require.Len(t, list, 1, "retired agents are not listed")
	assert.Equal(t, dangling.AgentID, list[0].AgentID)
	list = decodeInto[[]apiAgent](t, s.get(t, bootstrapList+"&status=retired", admin), http.StatusOK)
	require.Len(t, list, 1, "unless asked for")
	assert.Equal(t, pinned.AgentID, list[0].AgentID)
	r = s.get(t, "/v1/agents/"+pinned.AgentID, admin)
	require.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "Agent '"+pinned.AgentID+"' was retired at "+s.clock.Now().UTC().Format(time.RFC3339Nano)+
		"; its history stays readable with ?as_of= before that instant and in GET /v1/audit/events?agent_id="+pinned.AgentID+".", r.detail(t))
	past := decodeInto[apiAgent](t, s.get(t, "/v1/agents/"+pinned.AgentID+"?as_of="+url.QueryEscape(beforeRetire.Format(time.RFC3339Nano)), admin), http.StatusOK)
	assert.Equal(t, "approved", past.Status)
	d = evaluate(pinned.AgentID, "dispensing_agent", "prescriptions", session)
	assert.Equal(t, "Agent '"+pinned.AgentID+"' is not approved (status: 'retired')", d.Reason)
	r = patch("/v1/agents/"+pinned.AgentID+"/status", `{"status": "approved"}`)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Contains(t, r.detail(t), "retired is final")

	// The bootstrap again: the role is registered afresh under a new id.
	r = s.postJSON(t, "/v1/agents", admin, `{"agent_role": "dispensing_agent", "owner": "pharmacy", "framework": "langgraph",
		"policy_name": "dispensing-saas"}`)
	fresh := decodeInto[apiAgent](t, r, http.StatusCreated)
	assert.NotEqual(t, pinned.AgentID, fresh.AgentID, "a retired agent's id is never reused")
	assert.Equal(t, "draft", fresh.Status)
	approved := decodeInto[apiAgent](t, patch("/v1/agents/"+fresh.AgentID+"/status", `{"status": "approved"}`), http.StatusOK)
	assert.Equal(t, "approved", approved.Status)
	d = evaluate(fresh.AgentID, "dispensing_agent", "prescriptions", "s-fresh")
	assert.Equal(t, "ALLOW", d.Decision)
	assert.Equal(t, "dispensing-saas", d.PolicyName)
	list = decodeInto[[]apiAgent](t, s.get(t, bootstrapList, admin), http.StatusOK)
	require.Len(t, list, 2)
	assert.Equal(t, []string{dangling.AgentID, fresh.AgentID}, []string{list[0].AgentID, list[1].AgentID})

	// Asking for the retired id explicitly is refused, and says why.
	head := s.head(t)
	r = s.postJSON(t, "/v1/agents", admin, `{"agent_id": "`+pinned.AgentID+`", "agent_role": "dispensing_agent"}`)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "Agent_id belongs to a retired agent and is never reused: agent_id '"+pinned.AgentID+"' was retired at "+
		retiredAt(t, s, pinned.AgentID)+"; register without agent_id to get a fresh one.", r.detail(t))
	assert.Equal(t, head, s.head(t), "a refused request appends nothing")
}

// retiredAt returns when agent id was retired, as the 409 prints it.
func retiredAt(t *testing.T, s *stack, id string) string {
	t.Helper()
	a, err := s.ledger.Agent(id)
	require.NoError(t, err)
	return a.StatusChangedAt.UTC().Format(time.RFC3339)
}
