package domain_test

import (
	"fmt"
	"testing"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/policy"
)

// BenchmarkEvaluate measures the whole evaluation order (key binding,
// identity, role lock, session, policy steps) against a state of 100 roles,
// each with a policy of 20 sources and an approved agent, with sessions
// already started: the work the server does per decision under its lock,
// before encoding and appending.
func BenchmarkEvaluate(b *testing.B) {
	w := &world{t: &testing.T{}, state: domain.NewState()}
	for i := range 100 {
		role := fmt.Sprintf("role-%03d", i)
		sources := make([]string, 20)
		for j := range sources {
			sources[j] = fmt.Sprintf("source-%02d", j)
		}
		created, err := policy.Create(w.state.Policies, policy.Policy{
			Name: "policy-" + role, AgentRole: role, AllowedSources: sources, DeniedSources: []string{"hr"},
			AllowedTasks:      []string{"review", "kyc"},
			TaskBindings:      []policy.TaskBinding{{Task: "kyc", PermittedSources: []string{"source-01"}}},
			SessionTTLMinutes: ptrInt(60),
			SensitivityDecay:  []policy.DecayStep{{AfterMinutes: 30, MaxSensitivity: policy.LevelMedium}},
		}, t0, "pol_"+role)
		if err != nil {
			b.Fatal(err)
		}
		w.apply(created)
		a := agents.Agent{AgentID: "agent-" + role, AgentRole: role, Status: agents.StatusDraft, CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0}
		w.apply(agents.AgentRegistered{Agent: a})
		w.apply(agents.AgentStatusChanged{AgentID: a.AgentID, From: agents.StatusDraft, To: agents.StatusApproved, ChangedAt: t0})
	}
	reqs := make([]domain.EvaluateInput, 0, 200)
	for i := range 100 {
		role := fmt.Sprintf("role-%03d", i)
		allow := req("agent-"+role, role, "source-05", "session-"+role, policy.LevelMedium)
		deny := req("agent-"+role, role, "hr", "session-"+role, policy.LevelMedium)
		for _, r := range []policy.Request{allow, deny} {
			in := domain.EvaluateInput{Request: r, KeyID: "key_1", Now: t0}
			w.apply(w.state.Evaluate(in)) // start the session
			reqs = append(reqs, in)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = w.state.Evaluate(reqs[i%len(reqs)])
	}
}
