package policy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain/policy"
)

// benchSet builds a set of n realistic policies: 20 allowed sources, denied
// sources, tasks, three task bindings, two decay steps, entitlements and an
// agent-id glob each.
func benchSet(b *testing.B, n int) *policy.Set {
	b.Helper()
	var cs []*policy.Compiled
	for r := range n {
		role := fmt.Sprintf("role-%03d", r)
		var sources []string
		for s := range 20 {
			sources = append(sources, fmt.Sprintf("src-%02d-%s", s, role))
		}
		p := policy.Policy{
			Name:                      role + "-policy",
			PolicyID:                  "pol-" + role,
			AgentRole:                 role,
			PermittedAgentIDs:         []string{"agent-" + role + "-*", "svc-" + role},
			AllowedSources:            sources,
			DeniedSources:             []string{"hr-" + role, "payroll", "secrets"},
			AllowedTasks:              []string{"kyc", "review", "report", "rebalance", "audit"},
			DeniedTasks:               []string{"trading"},
			MaxSensitivity:            lvl(policy.LevelHigh),
			RequireTaskForSensitivity: lvl(policy.LevelHigh),
			TaskBindings: []policy.TaskBinding{
				{Task: "kyc", PermittedSources: sources[0:5], Actions: []policy.Action{"read"}},
				{Task: "review", PermittedSources: sources[3:10]},
				{Task: "rebalance", PermittedSources: sources[10:15], Actions: []policy.Action{"read", "write"}},
			},
			AllowedActions:    []policy.Action{"read", "write"},
			DeniedActions:     []policy.Action{"delete"},
			SessionTTLMinutes: ptr(120),
			SensitivityDecay: []policy.DecayStep{
				{AfterMinutes: 30, MaxSensitivity: "medium"},
				{AfterMinutes: 90, MaxSensitivity: "low"},
			},
			RequirePrincipalEntitlements: []policy.EntitlementRule{
				{Sources: sources[0:3], RequireAny: []string{"group:licensed-advisors", "group:supervisors"}},
				{Sources: sources[10:12], Actions: []policy.Action{"write"}, RequireAll: []string{"group:traders", "region:eu"}},
			},
		}
		c, err := policy.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	s, err := policy.NewSet(cs...)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type benchReq struct {
	req   policy.Request
	age   time.Duration
	allow bool
}

func benchRequests(n int) []benchReq {
	var out []benchReq
	claims := []string{"group:licensed-advisors", "region:eu"}
	for r := range n {
		role := fmt.Sprintf("role-%03d", r)
		src := func(i int) string { return fmt.Sprintf("src-%02d-%s", i, role) }
		base := policy.Request{
			AgentRole: role, AgentID: "agent-" + role + "-7", UserID: "u", SessionID: "6a4db3cf-0000",
			Sensitivity: policy.LevelMedium, Action: policy.ActionRead, PrincipalClaims: claims,
		}
		with := func(f func(q *policy.Request)) policy.Request { q := base; f(&q); return q }
		out = append(out,
			benchReq{with(func(q *policy.Request) { q.SourceID = src(1); q.TaskType = "kyc" }), 10 * time.Minute, true},
			benchReq{with(func(q *policy.Request) { q.SourceID = src(17); q.Sensitivity = "low" }), 100 * time.Minute, true},
			benchReq{with(func(q *policy.Request) { q.SourceID = src(12); q.TaskType = "rebalance"; q.Action = "write" }), 0, true},
			benchReq{with(func(q *policy.Request) { q.SourceID = src(8); q.TaskType = "kyc" }), 0, false},     // binding
			benchReq{with(func(q *policy.Request) { q.SourceID = "payroll" }), 0, false},                      // denied source
			benchReq{with(func(q *policy.Request) { q.SourceID = src(5); q.Sensitivity = "high" }), 0, false}, // task required
			benchReq{with(func(q *policy.Request) { q.SourceID = src(6); q.TaskType = "review" }), 45 * time.Minute, true},
			benchReq{with(func(q *policy.Request) { q.SourceID = src(6); q.Sensitivity = "medium" }), 95 * time.Minute, false}, // decay
			benchReq{with(func(q *policy.Request) { q.SourceID = "other" }), 0, false},                                         // not allowed
			benchReq{with(func(q *policy.Request) { q.SourceID = src(2); q.PrincipalClaims = nil }), 0, false},                 // entitlement
		)
	}
	return out
}

func BenchmarkEvaluate(b *testing.B) {
	const roles = 100
	set := benchSet(b, roles)
	all := benchRequests(roles)
	var allow, deny []benchReq
	for _, r := range all {
		c, ok := set.ByRole(r.req.AgentRole)
		if !ok {
			b.Fatalf("no policy for %s", r.req.AgentRole)
		}
		if d := c.Evaluate(r.req, r.age); d.Allowed != r.allow {
			b.Fatalf("%+v: got %+v", r.req, d)
		}
		if r.allow {
			allow = append(allow, r)
		} else {
			deny = append(deny, r)
		}
	}
	for _, bc := range []struct {
		name string
		reqs []benchReq
	}{{"allow", allow}, {"deny", deny}, {"mix", all}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var d policy.Decision
			i := 0
			for b.Loop() {
				r := &bc.reqs[i%len(bc.reqs)]
				i++
				c, ok := set.ByRole(r.req.AgentRole)
				if !ok {
					d = policy.DenyNoPolicy(r.req.AgentRole)
					continue
				}
				d = c.Evaluate(r.req, r.age)
			}
			_ = d
		})
	}
}
