package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
)

var t0 = time.Date(2030, 5, 6, 9, 0, 0, 0, time.UTC)

// world is a State folded from events, evaluated the way the Ledger does:
// evaluate, then apply the decision.
type world struct {
	t     *testing.T
	state *domain.State
	seq   uint64
}

func newWorld(t *testing.T) *world {
	return &world{t: t, state: domain.NewState()}
}

func (w *world) apply(ev domain.Event) {
	w.t.Helper()
	w.seq++
	require.NoError(w.t, w.state.Apply(domain.Meta{Seq: w.seq, ID: "ev", Time: t0}, ev))
}

func (w *world) policy(p policy.Policy) {
	w.t.Helper()
	created, err := policy.Create(w.state.Policies, p, t0, "pol_"+p.Name)
	require.NoError(w.t, err)
	w.apply(created)
}

func (w *world) agent(a agents.Agent) {
	w.t.Helper()
	status := a.Status
	a.Status, a.CreatedAt, a.UpdatedAt, a.StatusChangedAt = agents.StatusDraft, t0, t0, t0
	w.apply(agents.AgentRegistered{Agent: a})
	if status != "" && status != agents.StatusDraft {
		if status != agents.StatusApproved {
			w.apply(agents.AgentStatusChanged{AgentID: a.AgentID, From: agents.StatusDraft, To: agents.StatusApproved, ChangedAt: t0})
			w.apply(agents.AgentStatusChanged{AgentID: a.AgentID, From: agents.StatusApproved, To: status, ChangedAt: t0})
		} else {
			w.apply(agents.AgentStatusChanged{AgentID: a.AgentID, From: agents.StatusDraft, To: status, ChangedAt: t0})
		}
	}
}

func (w *world) eval(req policy.Request, keyAgent string, at time.Time) decision.Made {
	w.t.Helper()
	m := w.state.Evaluate(domain.EvaluateInput{Request: req, KeyID: "key_1", KeyAgentID: keyAgent, Now: at})
	w.apply(m)
	return m
}

func ptrInt(n int) *int { return &n }

// bank is a world with two roles, an alias, a bound agent and decay.
func bank(t *testing.T) *world {
	w := newWorld(t)
	w.policy(policy.Policy{
		Name: "advisor-policy", AgentRole: "advisor", AllowedSources: []string{"crm", "portfolio"},
		SessionTTLMinutes: ptrInt(30),
		SensitivityDecay:  []policy.DecayStep{{AfterMinutes: 10, MaxSensitivity: policy.LevelMedium}},
	})
	w.policy(policy.Policy{Name: "auditor-policy", AgentRole: "auditor", AllowedSources: []string{"ledger"}})
	w.policy(policy.Policy{Name: "special-policy", AgentRole: "special", AllowedSources: []string{"vault"}})
	w.agent(agents.Agent{AgentID: "adv-1", AgentRole: "advisor", PermittedRoles: []string{"helper"}, Status: agents.StatusApproved})
	w.agent(agents.Agent{AgentID: "adv-2", AgentRole: "advisor", Status: agents.StatusApproved})
	w.agent(agents.Agent{AgentID: "aud-1", AgentRole: "auditor", Status: agents.StatusApproved})
	w.agent(agents.Agent{AgentID: "bound-1", AgentRole: "advisor", PolicyName: "special-policy", Status: agents.StatusApproved})
	w.agent(agents.Agent{AgentID: "orphan-1", AgentRole: "nobody", Status: agents.StatusApproved})
	w.agent(agents.Agent{AgentID: "new-1", AgentRole: "advisor"})
	w.agent(agents.Agent{AgentID: "susp-1", AgentRole: "advisor", Status: agents.StatusSuspended})
	return w
}

func req(agentID, role, source, session string, level policy.Level) policy.Request {
	return policy.Request{AgentRole: role, AgentID: agentID, UserID: "u-1", SourceID: source, Sensitivity: level, SessionID: session}
}

func TestEvaluateIdentityRoleAndPolicySteps(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		req        policy.Request
		keyAgent   string
		decision   string
		policyName string
		reason     string
		denial     string
	}{
		{"allowed", req("adv-1", "advisor", "crm", "s-allowed", policy.LevelHigh), "",
			decision.Allow, "advisor-policy", "Access granted", ""},
		{"key bound to another agent", req("adv-1", "advisor", "crm", "s-bound", policy.LevelLow), "adv-2",
			decision.Deny, "key_agent_mismatch", "Key is bound to agent 'adv-2', not 'adv-1'", "identity"},
		{"key bound to the same agent", req("adv-2", "advisor", "crm", "s-same", policy.LevelLow), "adv-2",
			decision.Allow, "advisor-policy", "Access granted", ""},
		{"unknown agent", req("ghost", "advisor", "crm", "s-ghost", policy.LevelLow), "",
			decision.Deny, "agent_not_registered", "Agent 'ghost' is not registered", "identity"},
		{"no agent id", req("", "advisor", "crm", "s-none", policy.LevelLow), "",
			decision.Deny, "agent_not_registered", "Agent '' is not registered", "identity"},
		{"draft agent", req("new-1", "advisor", "crm", "s-draft", policy.LevelLow), "",
			decision.Deny, "agent_not_approved", "Agent 'new-1' is not approved (status: 'draft')", "identity"},
		{"suspended agent", req("susp-1", "advisor", "crm", "s-susp", policy.LevelLow), "",
			decision.Deny, "agent_not_approved", "Agent 'susp-1' is not approved (status: 'suspended')", "identity"},
		{"role not permitted", req("adv-1", "auditor", "ledger", "s-role", policy.LevelLow), "",
			decision.Deny, "role_not_permitted", "Agent 'adv-1' is not permitted to act as 'auditor' — permitted: ['advisor', 'helper']", "role"},
		{"alias evaluated as the canonical role", req("adv-1", "helper", "ledger", "s-alias", policy.LevelLow), "",
			decision.Deny, "advisor-policy", "Source 'ledger' is not in the allowed list for role 'advisor'", "policy"},
		{"alias allowed by the canonical policy", req("adv-1", "helper", "portfolio", "s-alias2", policy.LevelLow), "",
			decision.Allow, "advisor-policy", "Access granted", ""},
		{"no policy for the role", req("orphan-1", "nobody", "crm", "s-orphan", policy.LevelLow), "",
			decision.Deny, "default_deny", "No policy found for role 'nobody'", "policy"},
		{"bound policy_name wins over the role's policy", req("bound-1", "advisor", "vault", "s-boundpol", policy.LevelLow), "",
			decision.Allow, "special-policy", "Access granted", ""},
		{"bound policy_name denies the role's sources", req("bound-1", "advisor", "crm", "s-boundpol2", policy.LevelLow), "",
			decision.Deny, "special-policy", "Source 'crm' is not in the allowed list for role 'special'", "policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := bank(t)
			m := w.eval(tc.req, tc.keyAgent, t0)
			assert.Equal(t, tc.decision, m.Decision)
			assert.Equal(t, tc.policyName, m.PolicyName)
			assert.Equal(t, tc.reason, m.Reason)
			assert.Equal(t, tc.denial, m.DenialType)
			assert.Equal(t, policy.ActionRead, m.Request.Action, "action defaults to read")
		})
	}
}

func TestSessionsIsolationTTLAndDecay(t *testing.T) {
	t.Parallel()
	const sid = "6a4db3cf-1f0e-4c55-9b1e"
	cases := []struct {
		name   string
		steps  func(w *world) decision.Made
		reason string
		allow  bool
	}{
		{"another role cannot use an owned session", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("aud-1", "auditor", "ledger", sid, policy.LevelLow), "", t0.Add(time.Second))
		}, "Session '6a4db3cf…' is owned by 'advisor' — 'auditor' cannot access another agent's context", false},
		{"another agent of the same role may continue it", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("adv-2", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(time.Second))
		}, "Access granted", true},
		{"a denied first request still starts the session", func(w *world) decision.Made {
			first := w.eval(req("adv-1", "advisor", "ledger", sid, policy.LevelLow), "", t0)
			require.Equal(w.t, decision.Deny, first.Decision)
			require.NotNil(w.t, first.SessionStarted)
			return w.eval(req("aud-1", "auditor", "ledger", sid, policy.LevelLow), "", t0.Add(time.Second))
		}, "Session '6a4db3cf…' is owned by 'advisor' — 'auditor' cannot access another agent's context", false},
		{"an identity denial starts no session", func(w *world) decision.Made {
			first := w.eval(req("ghost", "advisor", "crm", sid, policy.LevelLow), "", t0)
			require.Nil(w.t, first.SessionStarted)
			return w.eval(req("aud-1", "auditor", "ledger", sid, policy.LevelLow), "", t0.Add(time.Second))
		}, "Access granted", true},
		{"just before the TTL", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(30*time.Minute-time.Nanosecond))
		}, "Access granted", true},
		{"at the TTL the session has expired", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(30*time.Minute))
		}, "Session '6a4db3cf…' has expired", false},
		{"activity does not extend the TTL", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(29*time.Minute))
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(31*time.Minute))
		}, "Session '6a4db3cf…' has expired", false},
		{"a later TTL change does not touch an existing session", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			p, _ := w.state.Policies.ByID("pol_advisor-policy")
			p.SessionTTLMinutes = ptrInt(600)
			updated, err := policy.Update(w.state.Policies, p.PolicyID, p, t0)
			require.NoError(w.t, err)
			w.apply(updated)
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0.Add(30*time.Minute))
		}, "Session '6a4db3cf…' has expired", false},
		{"before the decay step the ceiling is high", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelHigh), "", t0.Add(10*time.Minute-time.Nanosecond))
		}, "Access granted", true},
		{"at the decay step the ceiling drops", func(w *world) decision.Made {
			w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelLow), "", t0)
			return w.eval(req("adv-1", "advisor", "crm", sid, policy.LevelHigh), "", t0.Add(10*time.Minute))
		}, "Sensitivity 'high' exceeds effective ceiling 'medium' for role 'advisor' (sensitivity_decay after 10 minutes)", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := bank(t)
			m := tc.steps(w)
			assert.Equal(t, tc.reason, m.Reason)
			assert.Equal(t, tc.allow, m.Allowed())
		})
	}
}

func TestSessionTrailCountsDecisions(t *testing.T) {
	t.Parallel()
	w := bank(t)
	w.eval(req("adv-1", "advisor", "crm", "trail", policy.LevelLow), "", t0)
	w.eval(req("adv-1", "advisor", "portfolio", "trail", policy.LevelLow), "", t0.Add(time.Minute))
	w.eval(req("adv-1", "advisor", "ledger", "trail", policy.LevelLow), "", t0.Add(2*time.Minute))
	w.eval(req("adv-1", "advisor", "crm", "trail", policy.LevelLow), "", t0.Add(3*time.Minute))
	sess, ok := w.state.Sessions.Get("trail")
	require.True(t, ok)
	assert.Equal(t, "advisor", sess.OwnerRole)
	assert.Equal(t, "adv-1", sess.OwnerAgentID)
	assert.Equal(t, 3, sess.Allowed)
	assert.Equal(t, 1, sess.Denied)
	assert.Equal(t, []string{"crm", "portfolio"}, sess.SourcesAccessed)
	require.NotNil(t, sess.ExpiresAt)
	assert.Equal(t, t0.Add(30*time.Minute), *sess.ExpiresAt)

	// Replaying the same events into a fresh state gives the same sessions.
	clone := w.state.Clone()
	again, _ := clone.Sessions.Get("trail")
	assert.Equal(t, sess, again)
}

// TestPolicyResolution drives the three rules of step 4: the bound policy
// when the binding resolves, else the role's only policy, else DENY
// (default_deny without a policy, policy_ambiguous with several). Bindings
// are resolved at each evaluation, so policies created or deleted after the
// agent was registered take effect without touching the agent.
func TestPolicyResolution(t *testing.T) {
	t.Parallel()
	p := func(name, role string, sources ...string) policy.Policy {
		return policy.Policy{Name: name, AgentRole: role, AllowedSources: sources}
	}
	del := func(w *world, name string) {
		w.t.Helper()
		ev, err := policy.Delete(w.state.Policies, "pol_"+name, t0)
		require.NoError(w.t, err)
		w.apply(ev)
	}
	approved := func(id, role, bound string) agents.Agent {
		return agents.Agent{AgentID: id, AgentRole: role, PolicyName: bound, Status: agents.StatusApproved}
	}
	cases := []struct {
		name       string
		setup      func(w *world)
		agent      agents.Agent
		later      func(w *world) // after the agent is registered
		source     string
		decision   string
		policyName string
		reason     string
		resolution string
	}{
		{name: "rule 1: bound by name among several", source: "b-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("claims-b", "claims", "b-src")) },
			agent: approved("ag", "claims", "claims-b"), decision: decision.Allow, policyName: "claims-b",
			reason: "Access granted", resolution: policy.ResolvedBound},
		{name: "rule 1: the bound policy decides, not the role's other one", source: "a-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("claims-b", "claims", "b-src")) },
			agent: approved("ag", "claims", "claims-b"), decision: decision.Deny, policyName: "claims-b",
			reason: "Source 'a-src' is not in the allowed list for role 'claims'", resolution: policy.ResolvedBound},
		{name: "rule 1: bound to the only policy of the role", source: "a-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")) },
			agent: approved("ag", "claims", "claims-a"), decision: decision.Allow, policyName: "claims-a",
			reason: "Access granted", resolution: policy.ResolvedBound},
		{name: "rule 2: unbound, the role's only policy", source: "a-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("other", "other", "o-src")) },
			agent: approved("ag", "claims", ""), decision: decision.Allow, policyName: "claims-a",
			reason: "Access granted", resolution: policy.ResolvedRole},
		{name: "rule 2: dangling binding falls back to the only policy", source: "a-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")) },
			agent: approved("ag", "claims", "trial-tenant-policy"), decision: decision.Allow, policyName: "claims-a",
			reason: "Access granted", resolution: policy.ResolvedRole},
		{name: "rule 3: unbound among several", source: "a-src",
			setup: func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("claims-b", "claims", "b-src")) },
			agent: approved("ag", "claims", ""), decision: decision.Deny, policyName: "policy_ambiguous",
			reason: "Role 'claims' has 2 policies and agent 'ag' is bound to none of them"},
		{name: "rule 3: dangling binding among several", source: "a-src",
			setup: func(w *world) {
				w.policy(p("claims-a", "claims", "a-src"))
				w.policy(p("claims-b", "claims", "b-src"))
				w.policy(p("claims-c", "claims", "c-src"))
			},
			agent: approved("ag", "claims", "ghost"), decision: decision.Deny, policyName: "policy_ambiguous",
			reason: "Role 'claims' has 3 policies and agent 'ag' is bound to none of them"},
		{name: "rule 3: dangling binding, no policy at all", source: "a-src",
			agent: approved("ag", "claims", "ghost"), decision: decision.Deny, policyName: "default_deny",
			reason: "No policy found for role 'claims'"},
		{name: "a policy created after the dangling binding takes effect", source: "b-src",
			setup:    func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("other", "claims", "x")) },
			agent:    approved("ag", "claims", "claims-b"),
			later:    func(w *world) { w.policy(p("claims-b", "claims", "b-src")) },
			decision: decision.Allow, policyName: "claims-b", reason: "Access granted", resolution: policy.ResolvedBound},
		{name: "a bound policy deleted under its agent: the role's only policy", source: "a-src",
			setup:    func(w *world) { w.policy(p("claims-a", "claims", "a-src")); w.policy(p("claims-b", "claims", "b-src")) },
			agent:    approved("ag", "claims", "claims-b"),
			later:    func(w *world) { del(w, "claims-b") },
			decision: decision.Allow, policyName: "claims-a", reason: "Access granted", resolution: policy.ResolvedRole},
		{name: "a bound policy deleted under its agent: ambiguous among the rest", source: "a-src",
			setup: func(w *world) {
				w.policy(p("claims-a", "claims", "a-src"))
				w.policy(p("claims-b", "claims", "b-src"))
				w.policy(p("claims-c", "claims", "c-src"))
			},
			agent:    approved("ag", "claims", "claims-c"),
			later:    func(w *world) { del(w, "claims-c") },
			decision: decision.Deny, policyName: "policy_ambiguous",
			reason: "Role 'claims' has 2 policies and agent 'ag' is bound to none of them"},
		{name: "a bound policy deleted under its agent: no policy left", source: "a-src",
			setup:    func(w *world) { w.policy(p("claims-a", "claims", "a-src")) },
			agent:    approved("ag", "claims", "claims-a"),
			later:    func(w *world) { del(w, "claims-a") },
			decision: decision.Deny, policyName: "default_deny", reason: "No policy found for role 'claims'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tc.setup != nil {
				tc.setup(w)
			}
			w.agent(tc.agent)
			if tc.later != nil {
				tc.later(w)
			}
			m := w.eval(req(tc.agent.AgentID, tc.agent.AgentRole, tc.source, "s-"+tc.name, policy.LevelLow), "", t0)
			assert.Equal(t, tc.decision, m.Decision)
			assert.Equal(t, tc.policyName, m.PolicyName)
			assert.Equal(t, tc.reason, m.Reason)
			assert.Equal(t, tc.resolution, m.PolicyResolution)
			if tc.resolution == "" {
				assert.Empty(t, m.PolicyID, "no policy decided")
				assert.Equal(t, policy.DenialPolicy, m.DenialType)
			} else {
				got, ok := w.state.Policies.ByID(m.PolicyID)
				require.True(t, ok)
				assert.Equal(t, tc.policyName, got.Name)
				assert.Equal(t, got.Version, m.PolicyVersion)
			}
			after, ok := w.state.Agents.ByID(tc.agent.AgentID)
			require.True(t, ok)
			assert.Equal(t, tc.agent.PolicyName, after.PolicyName, "resolution never changes the agent")
		})
	}
}

func TestPermittedRolesListingTheOwnRole(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.policy(policy.Policy{Name: "dispensing", AgentRole: "dispensing_agent", AllowedSources: []string{"pharmacy"}})
	w.agent(agents.Agent{AgentID: "disp-1", AgentRole: "dispensing_agent",
		PermittedRoles: []string{"rx_verification_agent", "dispensing_agent"}, Status: agents.StatusApproved})
	for _, tc := range []struct {
		claimed, decision, reason string
	}{
		{"dispensing_agent", decision.Allow, "Access granted"},
		{"rx_verification_agent", decision.Allow, "Access granted"},
		{"billing_agent", decision.Deny,
			"Agent 'disp-1' is not permitted to act as 'billing_agent' — permitted: ['rx_verification_agent', 'dispensing_agent']"},
	} {
		m := w.eval(req("disp-1", tc.claimed, "pharmacy", "s-"+tc.claimed, policy.LevelLow), "", t0)
		assert.Equal(t, tc.decision, m.Decision, tc.claimed)
		assert.Equal(t, tc.reason, m.Reason, tc.claimed)
	}
}

func TestAgentWarnings(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.policy(policy.Policy{Name: "one-a", AgentRole: "one", AllowedSources: []string{"x"}})
	w.policy(policy.Policy{Name: "two-a", AgentRole: "two", AllowedSources: []string{"x"}})
	w.policy(policy.Policy{Name: "two-b", AgentRole: "two", AllowedSources: []string{"x"}})
	cases := []struct {
		name  string
		agent agents.Agent
		want  []string
	}{
		{"bound and resolving", agents.Agent{AgentID: "a", AgentRole: "two", PolicyName: "two-b"}, nil},
		{"unbound, one policy", agents.Agent{AgentID: "a", AgentRole: "one"}, nil},
		{"unbound, no policy", agents.Agent{AgentID: "a", AgentRole: "none"}, nil},
		{"unbound, several policies", agents.Agent{AgentID: "a", AgentRole: "two"}, []string{
			"agent 'a' is bound to no policy and role 'two' has 2 policies, so its requests are denied (policy_ambiguous); bind it with policy_name or policy_id"}},
		{"dangling, one policy", agents.Agent{AgentID: "a", AgentRole: "one", PolicyName: "trial"}, []string{
			"policy_name 'trial' names no policy yet; until a policy of that name exists, it is governed by the only policy of role 'one', 'one-a'"}},
		{"dangling, no policy", agents.Agent{AgentID: "a", AgentRole: "none", PolicyName: "trial"}, []string{
			"policy_name 'trial' names no policy yet; until a policy of that name exists, role 'none' has no policy, so its requests are denied (default_deny)"}},
		{"dangling, several policies", agents.Agent{AgentID: "a", AgentRole: "two", PolicyName: "trial"}, []string{
			"policy_name 'trial' names no policy yet; until a policy of that name exists, role 'two' has 2 policies, so its requests are denied (policy_ambiguous)"}},
		{"bound by id", agents.Agent{AgentID: "a", AgentRole: "two", PolicyID: "pol_two-a"}, nil},
		{"dangling id, resolving name", agents.Agent{AgentID: "a", AgentRole: "two", PolicyID: "pol_gone", PolicyName: "two-b"}, []string{
			"policy_id 'pol_gone' names no policy yet; meanwhile the agent is governed by its policy_name binding"}},
		{"resolving id, dangling name", agents.Agent{AgentID: "a", AgentRole: "two", PolicyID: "pol_two-a", PolicyName: "trial"}, []string{
			"policy_name 'trial' names no policy; the agent is governed by its policy_id binding"}},
		{"both dangling, several policies", agents.Agent{AgentID: "a", AgentRole: "two", PolicyID: "pol_gone", PolicyName: "trial"}, []string{
			"policy_id 'pol_gone' and policy_name 'trial' name no policy yet; until one of them does, role 'two' has 2 policies, so its requests are denied (policy_ambiguous)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, w.state.AgentWarnings(tc.agent))
		})
	}
}
