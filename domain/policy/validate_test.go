package policy_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/text"
)

// fullPolicy uses every field validly.
func fullPolicy() policy.Policy {
	return policy.Policy{
		Name:         "wealth-advisor",
		PolicyID:     "pol-wa",
		AgentRole:    "wealth_advisor",
		Description:  "advisor assistant",
		Industry:     "finance",
		Organization: "acme",
		Division:     "wealth",
		ProcessGroup: "advice",
		Regulations: []policy.Regulation{{ID: "finra-2111", Name: "Suitability",
			ApplicableRules: []policy.RegulationRule{{Rule: "know your customer", HowEnforced: "task binding"}}}},
		PermittedAgentIDs:         []string{"advisor-*", "agent-7"},
		AllowedSources:            []string{"crm", "portfolio"},
		DeniedSources:             []string{"hr"},
		AllowedTasks:              []string{"kyc"},
		DeniedTasks:               []string{"trading"},
		MaxSensitivity:            lvl(policy.LevelHigh),
		RequireTaskForSensitivity: lvl(policy.LevelMedium),
		TaskBindings: []policy.TaskBinding{
			{Task: "kyc", PermittedSources: []string{"crm"}, Actions: []policy.Action{"read"}},
		},
		AllowedActions:    []policy.Action{"read", "write"},
		DeniedActions:     []policy.Action{"delete"},
		SessionTTLMinutes: ptr(60),
		SensitivityDecay:  []policy.DecayStep{{AfterMinutes: 0, MaxSensitivity: "high"}, {AfterMinutes: 30, MaxSensitivity: "medium"}},
		RequirePrincipalEntitlements: []policy.EntitlementRule{
			{Sources: []string{"portfolio"}, Actions: []policy.Action{"read"}, RequireAny: []string{"group:licensed"}},
		},
		Version: 2,
	}
}

// fieldErrors flattens a Validate error into "field: problem" strings.
func fieldErrors(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, policy.ErrInvalidPolicy)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "want an errors.Join, got %T", err)
	var out []string
	for _, e := range joined.Unwrap() {
		var fe *policy.FieldError
		require.ErrorAs(t, e, &fe)
		out = append(out, fe.Field+": "+fe.Problem)
	}
	return out
}

func TestValidateAcceptsValidPolicies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    policy.Policy
	}{
		{name: "minimal", p: policy.Policy{Name: "n", AgentRole: "r"}},
		{name: "every field", p: fullPolicy()},
		{name: "empty present lists", p: policy.Policy{Name: "n", AgentRole: "r", AllowedTasks: []string{}, AllowedActions: []policy.Action{},
			TaskBindings: []policy.TaskBinding{{Task: "t", PermittedSources: []string{}, Actions: []policy.Action{}}}}},
		{name: "globs", p: policy.Policy{Name: "n", AgentRole: "r", PermittedAgentIDs: []string{"*", "a?", "[!x]*", "[]a]", "[a-]", `a\b`, "[^a]"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tc.p.Validate())
			_, err := policy.Compile(tc.p)
			require.NoError(t, err)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	p := policy.Policy{
		Name:                      " ",
		PermittedAgentIDs:         []string{"ok-*", "", "bad-[", "[z-a]"},
		AllowedSources:            []string{"crm", ""},
		DeniedTasks:               []string{""},
		MaxSensitivity:            lvl("High"),
		RequireTaskForSensitivity: lvl("extreme"),
		TaskBindings: []policy.TaskBinding{
			{Task: "kyc", PermittedSources: []string{"crm"}},
			{Task: "", Actions: []policy.Action{"read", "exec"}},
			{Task: "kyc", PermittedSources: []string{"x"}},
		},
		AllowedActions:    []policy.Action{"read", "READ"},
		DeniedActions:     []policy.Action{"drop"},
		SessionTTLMinutes: ptr(0),
		SensitivityDecay: []policy.DecayStep{
			{AfterMinutes: 10, MaxSensitivity: "medium"},
			{AfterMinutes: 10, MaxSensitivity: "low"},
			{AfterMinutes: -5, MaxSensitivity: "lowest"},
			{AfterMinutes: 20},
		},
		RequirePrincipalEntitlements: []policy.EntitlementRule{
			{RequireAny: []string{"g:1"}},
			{Sources: []string{"crm"}, Actions: []policy.Action{}},
			{Sources: []string{"crm"}, RequireAll: []string{""}},
		},
	}
	got := fieldErrors(t, p.Validate())
	want := []string{
		"name: required",
		"agent_role: required",
		"permitted_agent_ids[1]: must not be empty",
		"permitted_agent_ids[2]: invalid glob pattern: unclosed '[' at byte 4 in 'bad-['",
		"permitted_agent_ids[3]: invalid glob pattern: reversed range 'z-a' at byte 0 in '[z-a]'",
		"allowed_sources[1]: must not be empty",
		"denied_tasks[0]: must not be empty",
		"max_sensitivity: unknown sensitivity level 'High' (want low, medium, high or critical)",
		"require_task_for_sensitivity: unknown sensitivity level 'extreme' (want low, medium, high or critical)",
		"task_bindings[1].task: required",
		"task_bindings[1].permitted_sources: required",
		"task_bindings[1].actions[1]: unknown action 'exec' (want read, write or delete)",
		"task_bindings[2].task: duplicate task 'kyc' (also task_bindings[0])",
		"allowed_actions[1]: unknown action 'READ' (want read, write or delete)",
		"denied_actions[0]: unknown action 'drop' (want read, write or delete)",
		"session_ttl_minutes: must be positive, got 0",
		"sensitivity_decay[1].after_minutes: must be greater than sensitivity_decay[0].after_minutes (10), got 10",
		"sensitivity_decay[2].after_minutes: must not be negative, got -5",
		"sensitivity_decay[2].max_sensitivity: unknown sensitivity level 'lowest' (want low, medium, high or critical)",
		"sensitivity_decay[3].max_sensitivity: required",
		"require_principal_entitlements[0].sources: required",
		"require_principal_entitlements[1].actions: must not be empty when present (omit it to cover every action)",
		"require_principal_entitlements[1]: one of require_any or require_all is required",
		"require_principal_entitlements[2].require_all[0]: must not be empty",
	}
	require.Equal(t, want, got)

	_, err := policy.Compile(p)
	require.ErrorIs(t, err, policy.ErrInvalidPolicy)
	assert.Contains(t, err.Error(), "policy: session_ttl_minutes: must be positive, got 0")
}

func TestValidateSingleProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mut  func(p *policy.Policy)
		want string
	}{
		{name: "negative ttl", mut: func(p *policy.Policy) { p.SessionTTLMinutes = ptr(-1) }, want: "session_ttl_minutes: must be positive, got -1"},
		{name: "decay decreasing", mut: func(p *policy.Policy) {
			p.SensitivityDecay = []policy.DecayStep{{AfterMinutes: 30, MaxSensitivity: "low"}, {AfterMinutes: 5, MaxSensitivity: "low"}}
		}, want: "sensitivity_decay[1].after_minutes: must be greater than sensitivity_decay[0].after_minutes (30), got 5"},
		{name: "entitlement without requirements", mut: func(p *policy.Policy) {
			p.RequirePrincipalEntitlements = []policy.EntitlementRule{{Sources: []string{"crm"}, RequireAny: []string{}}}
		}, want: "require_principal_entitlements[0]: one of require_any or require_all is required"},
		{name: "binding action", mut: func(p *policy.Policy) {
			p.TaskBindings[0].Actions = []policy.Action{"read", "Write"}
		}, want: "task_bindings[0].actions[1]: unknown action 'Write' (want read, write or delete)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := fullPolicy()
			tc.mut(&p)
			require.Equal(t, []string{tc.want}, fieldErrors(t, p.Validate()))
		})
	}
}

func TestValidateSet(t *testing.T) {
	t.Parallel()
	a := policy.Policy{Name: "a", PolicyID: "id-a", AgentRole: "role-a"}
	b := policy.Policy{Name: "b", PolicyID: "id-b", AgentRole: "role-a"}
	c := policy.Policy{Name: "a", PolicyID: "id-a", AgentRole: "role-c"}
	d := policy.Policy{Name: "d", AgentRole: "role-d"}
	e := policy.Policy{Name: "e", AgentRole: "role-e"} // no policy_id: not a duplicate of d

	require.NoError(t, policy.ValidateSet([]policy.Policy{a, d, e}))
	require.NoError(t, policy.ValidateSet([]policy.Policy{a, b}), "several policies may share a role")

	d.SessionTTLMinutes = ptr(0)

	err := policy.ValidateSet([]policy.Policy{a, b, c, d, e})
	require.ErrorIs(t, err, policy.ErrConflict)
	require.ErrorIs(t, err, policy.ErrInvalidPolicy)
	var msgs []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		msgs = append(msgs, e.Error())
	}
	require.Equal(t, []string{
		"policy: policies[3].session_ttl_minutes: must be positive, got 0",
		"policy: duplicate name 'a': policies[0] (name 'a', agent_role 'role-a', policy_id 'id-a') and policies[2] (name 'a', agent_role 'role-c', policy_id 'id-a')",
		"policy: duplicate policy_id 'id-a': policies[0] (name 'a', agent_role 'role-a', policy_id 'id-a') and policies[2] (name 'a', agent_role 'role-c', policy_id 'id-a')",
	}, msgs)
	var ce *policy.ConflictError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "name", ce.Field)
	assert.Equal(t, "a", ce.Value)
}

// TestValidateRefusesCharacters puts a refused character into each string
// of a policy, one at a time: Validate and ValidateSet name that field with
// the text rule as the cause, while Compile (the replay path) still accepts
// a policy stored before the rule.
func TestValidateRefusesCharacters(t *testing.T) {
	t.Parallel()
	ids := map[string]func(*policy.Policy, string){
		"name":                                  func(p *policy.Policy, v string) { p.Name = v },
		"policy_id":                             func(p *policy.Policy, v string) { p.PolicyID = v },
		"agent_role":                            func(p *policy.Policy, v string) { p.AgentRole = v },
		"permitted_agent_ids[1]":                func(p *policy.Policy, v string) { p.PermittedAgentIDs[1] = v },
		"allowed_sources[0]":                    func(p *policy.Policy, v string) { p.AllowedSources[0] = v },
		"denied_sources[0]":                     func(p *policy.Policy, v string) { p.DeniedSources[0] = v },
		"allowed_tasks[0]":                      func(p *policy.Policy, v string) { p.AllowedTasks[0] = v },
		"denied_tasks[0]":                       func(p *policy.Policy, v string) { p.DeniedTasks[0] = v },
		"task_bindings[0].task":                 func(p *policy.Policy, v string) { p.TaskBindings[0].Task = v },
		"task_bindings[0].permitted_sources[0]": func(p *policy.Policy, v string) { p.TaskBindings[0].PermittedSources[0] = v },
		"require_principal_entitlements[0].sources[0]": func(p *policy.Policy, v string) {
			p.RequirePrincipalEntitlements[0].Sources[0] = v
		},
		"require_principal_entitlements[0].require_any[0]": func(p *policy.Policy, v string) {
			p.RequirePrincipalEntitlements[0].RequireAny[0] = v
		},
	}
	free := map[string]func(*policy.Policy, string){
		"description":   func(p *policy.Policy, v string) { p.Description = v },
		"industry":      func(p *policy.Policy, v string) { p.Industry = v },
		"process_group": func(p *policy.Policy, v string) { p.ProcessGroup = v },
		"regulations[0].applicable_rules[0].how_enforced": func(p *policy.Policy, v string) {
			p.Regulations[0].ApplicableRules[0].HowEnforced = v
		},
	}
	bad := map[string]string{"control": "a\x1bM", "DEL": "a\x7f", "bidi": "a\u202Eb", "zero-width": "a\u200Bb", "invalid UTF-8": "a\xffb"}
	for kind, fields := range map[string]map[string]func(*policy.Policy, string){"identifier": ids, "free text": free} {
		for field, set := range fields {
			for class, v := range bad {
				p := fullPolicy()
				set(&p, v)
				refused := kind == "identifier" || class == "control" || class == "DEL" || class == "invalid UTF-8"
				if !refused {
					assert.NoError(t, p.Validate(), "%s %s", field, class)
					continue
				}
				err := p.Validate()
				got := fieldErrors(t, err)
				require.Len(t, got, 1, "%s %s: %v", field, class, got)
				assert.Regexp(t, "^"+regexp.QuoteMeta(field)+": must (not contain|be valid UTF-8)", got[0])
				assert.ErrorIs(t, err, text.ErrRefused)

				err = policy.ValidateSet([]policy.Policy{p})
				assert.ErrorIs(t, err, text.ErrRefused, "%s %s", field, class)
				assert.Contains(t, err.Error(), "policies[0]."+field)

				_, err = policy.Compile(p)
				assert.NoError(t, err, "a stored policy replays: %s %s", field, class)
			}
		}
	}
	p := fullPolicy()
	p.Description = "line one\n\tline two\r\nשלום\u200F"
	assert.NoError(t, p.Validate())
}
