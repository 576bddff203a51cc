package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

func lvl(l policy.Level) *policy.Level { return &l }

// basePolicy allows read on crm, portfolio and research at up to high.
func basePolicy() policy.Policy {
	return policy.Policy{
		Name:           "advisor-policy",
		PolicyID:       "pol-1",
		AgentRole:      "advisor",
		Version:        3,
		AllowedSources: []string{"crm", "portfolio", "research"},
	}
}

func baseRequest() policy.Request {
	return policy.Request{
		AgentRole:   "advisor",
		AgentID:     "agent-1",
		UserID:      "u-1",
		SourceID:    "crm",
		Sensitivity: policy.LevelMedium,
		SessionID:   "6a4db3cf-aaaa-bbbb",
		Action:      policy.ActionRead,
		Query:       "q",
	}
}

const granted = "Access granted"

type evalCase struct {
	name   string
	policy func(p *policy.Policy)
	req    func(r *policy.Request)
	age    time.Duration
	allow  bool
	reason string
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := basePolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			c, err := policy.Compile(p)
			require.NoError(t, err)
			req := baseRequest()
			if tc.req != nil {
				tc.req(&req)
			}
			d := c.Evaluate(req, tc.age)
			require.Equal(t, tc.allow, d.Allowed, "reason: %s", d.Reason)
			require.Equal(t, tc.reason, d.Reason)
			assert.Equal(t, "advisor-policy", d.PolicyName)
			assert.Equal(t, "pol-1", d.PolicyID)
			assert.Equal(t, 3, d.PolicyVersion)
			if tc.allow {
				assert.Empty(t, d.DenialType)
			} else {
				assert.Equal(t, policy.DenialPolicy, d.DenialType)
			}
		})
	}
}

func TestEvaluateActions(t *testing.T) {
	t.Parallel()
	runEvalCases(t, []evalCase{
		{name: "read allowed by default", allow: true, reason: granted},
		{
			name:   "empty action means read",
			req:    func(r *policy.Request) { r.Action = "" },
			allow:  true,
			reason: granted,
		},
		{
			name:   "default allowed_actions is read so write is denied",
			req:    func(r *policy.Request) { r.Action = policy.ActionWrite },
			reason: "Action 'write' is not in the allowed action list for role 'advisor' (allowed: ['read'])",
		},
		{
			name:   "delete denied by default",
			req:    func(r *policy.Request) { r.Action = policy.ActionDelete },
			reason: "Action 'delete' is not in the allowed action list for role 'advisor' (allowed: ['read'])",
		},
		{
			name:   "allowed_actions permits write",
			policy: func(p *policy.Policy) { p.AllowedActions = []policy.Action{"read", "write"} },
			req:    func(r *policy.Request) { r.Action = policy.ActionWrite },
			allow:  true,
			reason: granted,
		},
		{
			name:   "allowed_actions listed in policy-file order",
			policy: func(p *policy.Policy) { p.AllowedActions = []policy.Action{"write", "read"} },
			req:    func(r *policy.Request) { r.Action = policy.ActionDelete },
			reason: "Action 'delete' is not in the allowed action list for role 'advisor' (allowed: ['write', 'read'])",
		},
		{
			name: "denied_actions beats allowed_actions",
			policy: func(p *policy.Policy) {
				p.AllowedActions = []policy.Action{"read", "write"}
				p.DeniedActions = []policy.Action{"write"}
			},
			req:    func(r *policy.Request) { r.Action = policy.ActionWrite },
			reason: "Action 'write' is explicitly denied for role 'advisor'",
		},
		{
			name:   "denied_actions can deny read",
			policy: func(p *policy.Policy) { p.DeniedActions = []policy.Action{"read"} },
			reason: "Action 'read' is explicitly denied for role 'advisor'",
		},
		{
			name:   "present empty allowed_actions allows nothing",
			policy: func(p *policy.Policy) { p.AllowedActions = []policy.Action{} },
			reason: "Action 'read' is not in the allowed action list for role 'advisor' (allowed: [])",
		},
		{
			name:   "unknown request action fails closed",
			req:    func(r *policy.Request) { r.Action = "execute" },
			reason: "Action 'execute' is not in the allowed action list for role 'advisor' (allowed: ['read'])",
		},
		{
			name: "action checked before sources",
			req: func(r *policy.Request) {
				r.Action = policy.ActionWrite
				r.SourceID = "unknown"
			},
			reason: "Action 'write' is not in the allowed action list for role 'advisor' (allowed: ['read'])",
		},
	})
}

func TestEvaluatePermittedAgentIDs(t *testing.T) {
	t.Parallel()
	ids := func(ids ...string) func(p *policy.Policy) {
		return func(p *policy.Policy) { p.PermittedAgentIDs = ids }
	}
	agent := func(id string) func(r *policy.Request) {
		return func(r *policy.Request) { r.AgentID = id }
	}
	notIn := func(id string) string {
		return "Agent '" + id + "' is not in permitted_agent_ids for role 'advisor'"
	}
	runEvalCases(t, []evalCase{
		{name: "absent means unrestricted", req: agent(""), allow: true, reason: granted},
		{name: "exact match", policy: ids("agent-0", "agent-1"), allow: true, reason: granted},
		{name: "exact no match", policy: ids("agent-2"), reason: notIn("agent-1")},
		{name: "no agent_id is denied", policy: ids("agent-1"), req: agent(""), reason: notIn("")},
		{name: "no agent_id is denied even by star", policy: ids("*"), req: agent(""), reason: notIn("")},
		{name: "present empty list denies all", policy: func(p *policy.Policy) { p.PermittedAgentIDs = []string{} }, reason: notIn("agent-1")},
		{name: "star glob", policy: ids("agent-*"), allow: true, reason: granted},
		{name: "star matches empty suffix", policy: ids("agent-1*"), allow: true, reason: granted},
		{name: "star matches slash", policy: ids("team/*"), req: agent("team/east/a-7"), allow: true, reason: granted},
		{name: "globs are case-sensitive", policy: ids("agent-*"), req: agent("Agent-1"), reason: notIn("Agent-1")},
		{name: "exact ids are case-sensitive", policy: ids("AGENT-1"), reason: notIn("agent-1")},
		{name: "question mark matches one character", policy: ids("agent-?"), allow: true, reason: granted},
		{name: "question mark needs a character", policy: ids("agent-1?"), reason: notIn("agent-1")},
		{name: "question mark matches one code point", policy: ids("agent-?"), req: agent("agent-é"), allow: true, reason: granted},
		{name: "class", policy: ids("agent-[0-3]"), allow: true, reason: granted},
		{name: "class no match", policy: ids("agent-[2-9]"), reason: notIn("agent-1")},
		{name: "negated class", policy: ids("agent-[!1]"), reason: notIn("agent-1")},
		{name: "caret is literal in a class", policy: ids("agent-[^1]"), allow: true, reason: granted},
		{name: "glob must match whole id", policy: ids("agent"), reason: notIn("agent-1")},
		{name: "star in the middle backtracks", policy: ids("a*-*1"), req: agent("a-b-c-1"), allow: true, reason: granted},
		{name: "backslash is literal", policy: ids(`a\*`), req: agent(`a\bc`), allow: true, reason: granted},
		{
			name:   "checked before actions",
			policy: ids("other"),
			req:    func(r *policy.Request) { r.Action = policy.ActionDelete },
			reason: notIn("agent-1"),
		},
	})
}

func TestEvaluateRequireTask(t *testing.T) {
	t.Parallel()
	threshold := func(p *policy.Policy) { p.RequireTaskForSensitivity = lvl(policy.LevelHigh) }
	level := func(l policy.Level, task string) func(r *policy.Request) {
		return func(r *policy.Request) { r.Sensitivity = l; r.TaskType = task }
	}
	runEvalCases(t, []evalCase{
		{
			name: "at threshold without task", policy: threshold, req: level("high", ""),
			reason: "A task_type is required for sensitivity 'high' for role 'advisor' (threshold: 'high')",
		},
		{
			name: "above threshold without task, before the ceiling", policy: threshold, req: level("critical", ""),
			reason: "A task_type is required for sensitivity 'critical' for role 'advisor' (threshold: 'high')",
		},
		{name: "below threshold without task", policy: threshold, req: level("medium", ""), allow: true, reason: granted},
		{name: "at threshold with task", policy: threshold, req: level("high", "kyc"), allow: true, reason: granted},
		{name: "no threshold", req: level("high", ""), allow: true, reason: granted},
		{
			name: "checked before denied_sources",
			policy: func(p *policy.Policy) {
				threshold(p)
				p.DeniedSources = []string{"crm"}
			},
			req:    level("high", ""),
			reason: "A task_type is required for sensitivity 'high' for role 'advisor' (threshold: 'high')",
		},
	})
}

func TestEvaluateSourcesAndTasks(t *testing.T) {
	t.Parallel()
	src := func(s string) func(r *policy.Request) { return func(r *policy.Request) { r.SourceID = s } }
	task := func(task string) func(r *policy.Request) { return func(r *policy.Request) { r.TaskType = task } }
	runEvalCases(t, []evalCase{
		{
			name:   "source not in allowed_sources",
			req:    src("hr"),
			reason: "Source 'hr' is not in the allowed list for role 'advisor'",
		},
		{
			name:   "source match is exact",
			req:    src("CRM"),
			reason: "Source 'CRM' is not in the allowed list for role 'advisor'",
		},
		{
			name:   "absent allowed_sources allows nothing",
			policy: func(p *policy.Policy) { p.AllowedSources = nil },
			reason: "Source 'crm' is not in the allowed list for role 'advisor'",
		},
		{
			name:   "denied_sources beats allowed_sources",
			policy: func(p *policy.Policy) { p.DeniedSources = []string{"crm"} },
			reason: "Source 'crm' is explicitly denied for role 'advisor'",
		},
		{
			name: "denied source checked before denied task",
			policy: func(p *policy.Policy) {
				p.DeniedSources = []string{"crm"}
				p.DeniedTasks = []string{"kyc"}
			},
			req:    task("kyc"),
			reason: "Source 'crm' is explicitly denied for role 'advisor'",
		},
		{
			name: "denied source checked before allowed_tasks",
			policy: func(p *policy.Policy) {
				p.DeniedSources = []string{"crm"}
				p.AllowedTasks = []string{"other"}
			},
			req:    task("kyc"),
			reason: "Source 'crm' is explicitly denied for role 'advisor'",
		},
		{
			name:   "denied task",
			policy: func(p *policy.Policy) { p.DeniedTasks = []string{"kyc"} },
			req:    task("kyc"),
			reason: "Task 'kyc' is explicitly denied for role 'advisor'",
		},
		{
			name: "denied_tasks beats allowed_tasks",
			policy: func(p *policy.Policy) {
				p.AllowedTasks = []string{"kyc"}
				p.DeniedTasks = []string{"kyc"}
			},
			req:    task("kyc"),
			reason: "Task 'kyc' is explicitly denied for role 'advisor'",
		},
		{
			name:   "task not in allowed_tasks",
			policy: func(p *policy.Policy) { p.AllowedTasks = []string{"review"} },
			req:    task("kyc"),
			reason: "Task 'kyc' is not in the allowed task list for role 'advisor'",
		},
		{
			name:   "task in allowed_tasks",
			policy: func(p *policy.Policy) { p.AllowedTasks = []string{"review", "kyc"} },
			req:    task("kyc"),
			allow:  true,
			reason: granted,
		},
		{
			name:   "allowed_tasks not checked without task_type",
			policy: func(p *policy.Policy) { p.AllowedTasks = []string{"review"} },
			allow:  true,
			reason: granted,
		},
		{
			name:   "present empty allowed_tasks denies every task",
			policy: func(p *policy.Policy) { p.AllowedTasks = []string{} },
			req:    task("kyc"),
			reason: "Task 'kyc' is not in the allowed task list for role 'advisor'",
		},
		{
			name:   "absent allowed_tasks leaves tasks unrestricted",
			req:    task("anything"),
			allow:  true,
			reason: granted,
		},
		{
			name:   "denied task before source allow list",
			policy: func(p *policy.Policy) { p.DeniedTasks = []string{"kyc"} },
			req:    func(r *policy.Request) { r.TaskType = "kyc"; r.SourceID = "hr" },
			reason: "Task 'kyc' is explicitly denied for role 'advisor'",
		},
	})
}

func TestEvaluateTaskBindings(t *testing.T) {
	t.Parallel()
	bind := func(p *policy.Policy) {
		p.AllowedActions = []policy.Action{"read", "write"}
		p.TaskBindings = []policy.TaskBinding{
			{Task: "kyc", PermittedSources: []string{"crm", "portfolio"}, Actions: []policy.Action{"read"}},
			{Task: "rebalance", PermittedSources: []string{"portfolio", "trading"}},
			{Task: "none", PermittedSources: []string{"crm"}, Actions: []policy.Action{}},
		}
	}
	req := func(task, src string, a policy.Action, l policy.Level) func(r *policy.Request) {
		return func(r *policy.Request) {
			r.TaskType, r.SourceID, r.Action, r.Sensitivity = task, src, a, l
		}
	}
	runEvalCases(t, []evalCase{
		{name: "bound task on permitted source", policy: bind, req: req("kyc", "crm", "read", "medium"), allow: true, reason: granted},
		{
			name: "bound task on source outside binding but in allowed_sources", policy: bind,
			req:    req("kyc", "research", "read", "medium"),
			reason: "Task 'kyc' is not permitted to access source 'research' — permitted: ['crm', 'portfolio']",
		},
		{
			name: "binding checked before allowed_sources", policy: bind,
			req:    req("kyc", "hr", "read", "medium"),
			reason: "Task 'kyc' is not permitted to access source 'hr' — permitted: ['crm', 'portfolio']",
		},
		{
			name: "binding checked before ceiling", policy: bind,
			req:    req("kyc", "research", "read", "critical"),
			reason: "Task 'kyc' is not permitted to access source 'research' — permitted: ['crm', 'portfolio']",
		},
		{
			name: "binding never grants a source missing from allowed_sources", policy: bind,
			req:    req("rebalance", "trading", "read", "medium"),
			reason: "Source 'trading' is not in the allowed list for role 'advisor'",
		},
		{
			name: "binding actions narrow", policy: bind,
			req:    req("kyc", "crm", "write", "medium"),
			reason: "Task 'kyc' is not permitted to perform action 'write' — permitted: ['read']",
		},
		{
			name: "source checked before binding actions", policy: bind,
			req:    req("kyc", "research", "write", "medium"),
			reason: "Task 'kyc' is not permitted to access source 'research' — permitted: ['crm', 'portfolio']",
		},
		{name: "binding without actions does not narrow", policy: bind, req: req("rebalance", "portfolio", "write", "medium"), allow: true, reason: granted},
		{
			name: "binding with empty actions permits none", policy: bind,
			req:    req("none", "crm", "read", "medium"),
			reason: "Task 'none' is not permitted to perform action 'read' — permitted: []",
		},
		{
			name: "binding actions never grant an action missing from allowed_actions",
			policy: func(p *policy.Policy) {
				p.TaskBindings = []policy.TaskBinding{{Task: "kyc", PermittedSources: []string{"crm"}, Actions: []policy.Action{"read", "write"}}}
			},
			req:    req("kyc", "crm", "write", "medium"),
			reason: "Action 'write' is not in the allowed action list for role 'advisor' (allowed: ['read'])",
		},
		{name: "task without binding is not purpose limited", policy: bind, req: req("other", "research", "write", "medium"), allow: true, reason: granted},
		{name: "no task_type ignores bindings", policy: bind, req: req("", "research", "write", "medium"), allow: true, reason: granted},
		{
			name: "denied task before binding",
			policy: func(p *policy.Policy) {
				bind(p)
				p.DeniedTasks = []string{"kyc"}
			},
			req:    req("kyc", "research", "read", "medium"),
			reason: "Task 'kyc' is explicitly denied for role 'advisor'",
		},
	})
}

func TestEvaluateCeilingAndDecay(t *testing.T) {
	t.Parallel()
	level := func(l policy.Level) func(r *policy.Request) { return func(r *policy.Request) { r.Sensitivity = l } }
	decay := func(p *policy.Policy) {
		p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 30, MaxSensitivity: "medium"}, {AfterMinutes: 60, MaxSensitivity: "low"}}
	}
	runEvalCases(t, []evalCase{
		{name: "default ceiling high allows high", req: level("high"), allow: true, reason: granted},
		{name: "default ceiling high denies critical", req: level("critical"), reason: "Sensitivity 'critical' exceeds ceiling 'high' for role 'advisor'"},
		{name: "low allowed", req: level("low"), allow: true, reason: granted},
		{
			name:   "equal to explicit ceiling allowed",
			policy: func(p *policy.Policy) { p.MaxSensitivity = lvl("critical") },
			req:    level("critical"), allow: true, reason: granted,
		},
		{
			name:   "above explicit ceiling denied",
			policy: func(p *policy.Policy) { p.MaxSensitivity = lvl("low") },
			req:    level("medium"),
			reason: "Sensitivity 'medium' exceeds ceiling 'low' for role 'advisor'",
		},
		{
			name:   "unknown request level fails closed",
			req:    level("secret"),
			reason: "Sensitivity 'secret' exceeds ceiling 'high' for role 'advisor'",
		},
		{name: "decay: one nanosecond before first step", policy: decay, req: level("high"), age: 30*time.Minute - 1, allow: true, reason: granted},
		{
			name: "decay: exactly at first step", policy: decay, req: level("high"), age: 30 * time.Minute,
			reason: "Sensitivity 'high' exceeds effective ceiling 'medium' for role 'advisor' (sensitivity_decay after 30 minutes)",
		},
		{name: "decay: at first step, equal to effective ceiling", policy: decay, req: level("medium"), age: 45 * time.Minute, allow: true, reason: granted},
		{name: "decay: one nanosecond before second step", policy: decay, req: level("medium"), age: time.Hour - 1, allow: true, reason: granted},
		{
			name: "decay: latest step reached wins", policy: decay, req: level("medium"), age: time.Hour,
			reason: "Sensitivity 'medium' exceeds effective ceiling 'low' for role 'advisor' (sensitivity_decay after 60 minutes)",
		},
		{name: "decay: long after last step", policy: decay, req: level("low"), age: 1000 * time.Hour, allow: true, reason: granted},
		{
			name: "decay: above max_sensitivity gives the plain reason", policy: decay, req: level("critical"), age: time.Hour,
			reason: "Sensitivity 'critical' exceeds ceiling 'high' for role 'advisor'",
		},
		{
			name: "decay: a step above max_sensitivity does not raise the ceiling",
			policy: func(p *policy.Policy) {
				p.MaxSensitivity = lvl("low")
				p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 10, MaxSensitivity: "critical"}}
			},
			req: level("medium"), age: time.Hour,
			reason: "Sensitivity 'medium' exceeds ceiling 'low' for role 'advisor'",
		},
		{
			name: "decay: step at zero applies at once",
			policy: func(p *policy.Policy) {
				p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 0, MaxSensitivity: "low"}}
			},
			req:    level("medium"),
			reason: "Sensitivity 'medium' exceeds effective ceiling 'low' for role 'advisor' (sensitivity_decay after 0 minutes)",
		},
		{
			name: "decay: negative age counts as zero",
			policy: func(p *policy.Policy) {
				p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 0, MaxSensitivity: "low"}}
			},
			req: level("medium"), age: -time.Minute,
			reason: "Sensitivity 'medium' exceeds effective ceiling 'low' for role 'advisor' (sensitivity_decay after 0 minutes)",
		},
		{
			name: "ceiling checked before entitlements",
			policy: func(p *policy.Policy) {
				p.RequirePrincipalEntitlements = []policy.EntitlementRule{{Sources: []string{"crm"}, RequireAny: []string{"group:x"}}}
			},
			req:    level("critical"),
			reason: "Sensitivity 'critical' exceeds ceiling 'high' for role 'advisor'",
		},
	})
}

func TestEvaluateEntitlements(t *testing.T) {
	t.Parallel()
	rules := func(p *policy.Policy) {
		p.AllowedActions = []policy.Action{"read", "write"}
		p.RequirePrincipalEntitlements = []policy.EntitlementRule{
			{Sources: []string{"portfolio"}, RequireAny: []string{"group:licensed-advisors", "group:supervisors"}},
			{Sources: []string{"research"}, RequireAll: []string{"region:eu", "tier:gold"}},
			{Sources: []string{"crm"}, Actions: []policy.Action{"write"}, RequireAny: []string{"role:editor"}},
		}
	}
	req := func(src string, a policy.Action, claims ...string) func(r *policy.Request) {
		return func(r *policy.Request) { r.SourceID, r.Action, r.PrincipalClaims = src, a, claims }
	}
	const anyReason = "Principal lacks required entitlements for source 'portfolio' — require_any: ['group:licensed-advisors', 'group:supervisors']"
	const allReason = "Principal lacks required entitlements for source 'research' — require_all: ['region:eu', 'tier:gold']"
	runEvalCases(t, []evalCase{
		{name: "require_any: one claim held", policy: rules, req: req("portfolio", "read", "group:supervisors"), allow: true, reason: granted},
		{name: "require_any: other claims only", policy: rules, req: req("portfolio", "read", "group:interns"), reason: anyReason},
		{name: "require_any: no claims", policy: rules, req: req("portfolio", "read"), reason: anyReason},
		{name: "require_any: claim match is exact", policy: rules, req: req("portfolio", "read", "group:Supervisors"), reason: anyReason},
		{name: "require_all: all held in any order", policy: rules, req: req("research", "read", "tier:gold", "x:y", "region:eu"), allow: true, reason: granted},
		{name: "require_all: one missing", policy: rules, req: req("research", "read", "region:eu"), reason: allReason},
		{name: "require_all: no claims", policy: rules, req: req("research", "read"), reason: allReason},
		{name: "action-scoped rule skips other actions", policy: rules, req: req("crm", "read"), allow: true, reason: granted},
		{
			name: "action-scoped rule applies to its action", policy: rules, req: req("crm", "write"),
			reason: "Principal lacks required entitlements for source 'crm' — require_any: ['role:editor']",
		},
		{name: "action-scoped rule satisfied", policy: rules, req: req("crm", "write", "role:editor"), allow: true, reason: granted},
		{
			name: "both require_any and require_all must hold",
			policy: func(p *policy.Policy) {
				p.RequirePrincipalEntitlements = []policy.EntitlementRule{
					{Sources: []string{"crm"}, RequireAny: []string{"a:1", "a:2"}, RequireAll: []string{"b:1", "b:2"}},
				}
			},
			req:    req("crm", "read", "a:2", "b:1"),
			reason: "Principal lacks required entitlements for source 'crm' — require_all: ['b:1', 'b:2']",
		},
		{
			name: "every matching rule must hold, first failing reported",
			policy: func(p *policy.Policy) {
				p.RequirePrincipalEntitlements = []policy.EntitlementRule{
					{Sources: []string{"crm", "portfolio"}, RequireAny: []string{"a:1"}},
					{Sources: []string{"crm"}, RequireAll: []string{"b:1"}},
				}
			},
			req:    req("crm", "read", "a:1"),
			reason: "Principal lacks required entitlements for source 'crm' — require_all: ['b:1']",
		},
	})
}

func TestEvaluateReasonUsesCompiledRole(t *testing.T) {
	t.Parallel()
	c, err := policy.Compile(basePolicy())
	require.NoError(t, err)
	req := baseRequest()
	req.AgentRole = "alias-role" // a permitted alias: evaluated under the canonical role
	req.SourceID = "hr"
	d := c.Evaluate(req, 0)
	require.False(t, d.Allowed)
	require.Equal(t, "Source 'hr' is not in the allowed list for role 'advisor'", d.Reason)
}

func TestEvaluateIsolatedFromCallerMutation(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	c, err := policy.Compile(p)
	require.NoError(t, err)
	p.AllowedSources[0] = "changed"
	got := c.Policy()
	got.AllowedSources[1] = "changed too"
	require.Equal(t, []string{"crm", "portfolio", "research"}, c.Policy().AllowedSources)
	require.True(t, c.Evaluate(baseRequest(), 0).Allowed)
}

func TestEvaluateConcurrent(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	p.PermittedAgentIDs = []string{"agent-*"}
	c, err := policy.Compile(p)
	require.NoError(t, err)
	done := make(chan policy.Decision)
	for i := range 8 {
		go func() {
			req := baseRequest()
			if i%2 == 1 {
				req.SourceID = "hr"
			}
			var d policy.Decision
			for range 200 {
				d = c.Evaluate(req, time.Duration(i)*time.Minute)
			}
			done <- d
		}()
	}
	allowed := 0
	for range 8 {
		if (<-done).Allowed {
			allowed++
		}
	}
	require.Equal(t, 4, allowed)
}

func TestEvaluateAllowDoesNotAllocate(t *testing.T) {
	p := basePolicy()
	p.PermittedAgentIDs = []string{"agent-*"}
	p.TaskBindings = []policy.TaskBinding{{Task: "kyc", PermittedSources: []string{"crm"}, Actions: []policy.Action{"read"}}}
	p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 30, MaxSensitivity: "medium"}}
	p.RequirePrincipalEntitlements = []policy.EntitlementRule{{Sources: []string{"crm"}, RequireAny: []string{"g:1"}}}
	c, err := policy.Compile(p)
	require.NoError(t, err)
	req := baseRequest()
	req.TaskType = "kyc"
	req.PrincipalClaims = []string{"g:1"}
	var d policy.Decision
	allocs := testing.AllocsPerRun(100, func() { d = c.Evaluate(req, time.Hour) })
	require.True(t, d.Allowed, d.Reason)
	require.Zero(t, allocs)
}

func TestSessionTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ttl  *int
		want time.Duration
		ok   bool
	}{
		{name: "absent never expires"},
		{name: "minutes", ttl: ptr(90), want: 90 * time.Minute, ok: true},
		{name: "huge saturates", ttl: ptr(int(^uint(0) >> 1)), want: time.Duration(1<<63 - 1), ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := basePolicy()
			p.SessionTTLMinutes = tc.ttl
			c, err := policy.Compile(p)
			require.NoError(t, err)
			got, ok := c.SessionTTL()
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func ptr[T any](v T) *T { return &v }
