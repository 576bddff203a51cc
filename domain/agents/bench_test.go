package agents_test

import (
	"testing"

	"github.com/custos-dev/custos/domain/agents"
)

// BenchmarkIdentityAndRoleLock measures the evaluator's steps 1 and 2: look
// the agent up, check its status and the claimed role.
func BenchmarkIdentityAndRoleLock(b *testing.B) {
	h := newHarness(b)
	for range 10_000 {
		a := h.register(agents.RegisterCommand{AgentRole: "claims", PermittedRoles: []string{"reader", "auditor"}}, t0)
		h.changeStatus(a.AgentID, agents.StatusApproved, t0)
	}
	id := agentID(5_000)
	b.ReportAllocs()
	for b.Loop() {
		a, ok := h.state.ByID(id)
		if !ok || !a.IsApproved() || !a.MayClaim("auditor") {
			b.Fatal("denied")
		}
	}
}
