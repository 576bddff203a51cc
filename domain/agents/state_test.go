package agents_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
)

func ids(as []agents.Agent) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.AgentID)
	}
	return out
}

func TestList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Registered out of id order, some at the same time.
	h.register(agents.RegisterCommand{AgentID: "c", AgentRole: "r", Framework: "langgraph", Owner: "alice"}, t0.Add(time.Minute))
	h.register(agents.RegisterCommand{AgentID: "b", AgentRole: "r", Framework: "crewai", Owner: "alice"}, t0)
	h.register(agents.RegisterCommand{AgentID: "a", AgentRole: "r", Framework: "langgraph", Owner: "bob"}, t0.Add(time.Minute))
	h.register(agents.RegisterCommand{AgentID: "d", AgentRole: "r"}, t0.Add(-time.Minute))
	h.changeStatus("a", agents.StatusApproved, t0.Add(time.Hour))
	h.changeStatus("c", agents.StatusApproved, t0.Add(time.Hour))
	h.changeStatus("c", agents.StatusSuspended, t0.Add(time.Hour))
	h.changeStatus("d", agents.StatusRetired, t0.Add(time.Hour))
	// An update does not move an agent in the order.
	h.update("b", agents.UpdateCommand{Owner: ptr("alice")}, t0.Add(2*time.Hour))

	tests := []struct {
		name   string
		filter agents.Filter
		want   []string
	}{
		{"not retired, by created_at then agent_id", agents.Filter{}, []string{"b", "a", "c"}},
		{"every status", agents.Filter{AllStatuses: true}, []string{"d", "b", "a", "c"}},
		{"every status overrides status", agents.Filter{AllStatuses: true, Status: "draft"}, []string{"d", "b", "a", "c"}},
		{"framework", agents.Filter{Framework: "langgraph"}, []string{"a", "c"}},
		{"framework exact", agents.Filter{Framework: "LangGraph"}, []string{}},
		{"owner", agents.Filter{Owner: "alice"}, []string{"b", "c"}},
		{"status draft", agents.Filter{Status: "draft"}, []string{"b"}},
		{"status approved", agents.Filter{Status: "approved"}, []string{"a"}},
		{"status suspended", agents.Filter{Status: "suspended"}, []string{"c"}},
		{"status retired", agents.Filter{Status: "retired"}, []string{"d"}},
		{"status unknown", agents.Filter{Status: "gone"}, []string{}},
		{"combined", agents.Filter{Framework: "langgraph", Owner: "alice"}, []string{"c"}},
		{"combined with status", agents.Filter{Framework: "langgraph", Owner: "bob", Status: "approved"}, []string{"a"}},
		{"combined none", agents.Filter{Framework: "crewai", Status: "approved"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := h.state.List(tt.filter)
			assert.Equal(t, tt.want, ids(got))
			require.NotNil(t, got)
		})
	}
	assert.Equal(t, 4, h.state.Len())
}

func TestZeroState(t *testing.T) {
	t.Parallel()
	var s agents.State
	assert.Equal(t, 0, s.Len())
	assert.Empty(t, s.List(agents.Filter{}))
	_, ok := s.ByID("a")
	assert.False(t, ok)
	assert.Equal(t, 0, s.Clone().Len())
}

func TestReadsReturnCopies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "a", AgentRole: "r", PermittedRoles: []string{"x", "y"}}, t0)

	a := mustAgent(t, h.state, "a")
	a.PermittedRoles[0] = "changed"
	a.Owner = "changed"
	l := h.state.List(agents.Filter{})
	l[0].PermittedRoles[1] = "changed"
	assert.Equal(t, []string{"x", "y"}, mustAgent(t, h.state, "a").PermittedRoles)
	assert.Empty(t, mustAgent(t, h.state, "a").Owner)

	// The State does not share the applied event's slice either.
	ev, err := agents.Register(h.state, agents.RegisterCommand{AgentID: "b", AgentRole: "r", PermittedRoles: []string{"p"}}, t0, agentID(1))
	require.NoError(t, err)
	h.commit(ev)
	ev.Agent.PermittedRoles[0] = "changed"
	assert.Equal(t, []string{"p"}, mustAgent(t, h.state, "b").PermittedRoles)
}

func TestClone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "a", AgentRole: "r", PermittedRoles: []string{"x"}}, t0)
	snap := h.state.Clone()
	require.Equal(t, h.state, snap)

	h.changeStatus("a", agents.StatusApproved, t0.Add(time.Minute))
	h.update("a", agents.UpdateCommand{PermittedRoles: ptr([]string{"y"})}, t0.Add(2*time.Minute))
	h.register(agents.RegisterCommand{AgentID: "b", AgentRole: "r"}, t0)

	a := mustAgent(t, snap, "a")
	assert.Equal(t, agents.StatusDraft, a.Status)
	assert.Equal(t, []string{"x"}, a.PermittedRoles)
	assert.Equal(t, 1, snap.Len())

	// And the other way round.
	require.NoError(t, snap.Apply(agents.AgentStatusChanged{AgentID: "a", From: agents.StatusDraft, To: agents.StatusRetired, ChangedAt: t0}))
	assert.Equal(t, agents.StatusApproved, mustAgent(t, h.state, "a").Status)
}

// TestFrozenCopy checks that a frozen copy keeps reading as the state did
// when it was taken, however the state changes afterwards: the agents it
// shares are never changed in place.
func TestFrozenCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for i := range 50 {
		h.register(agents.RegisterCommand{AgentID: fmt.Sprintf("a%d", i), AgentRole: "r", PermittedRoles: []string{"x"}}, t0)
	}
	frozen := h.state.FrozenCopy()
	want := h.state.Clone()
	all := agents.Filter{AllStatuses: true}
	for i := range 50 {
		id := fmt.Sprintf("a%d", i)
		switch i % 3 {
		case 0:
			h.changeStatus(id, agents.StatusApproved, t0.Add(time.Minute))
		case 1:
			h.update(id, agents.UpdateCommand{PermittedRoles: ptr([]string{"y"})}, t0.Add(2*time.Minute))
		}
	}
	h.register(agents.RegisterCommand{AgentID: "new", AgentRole: "r"}, t0)

	require.Equal(t, want.List(all), frozen.List(all))
	require.Equal(t, want.Len(), frozen.Len())
	assert.Equal(t, agents.StatusApproved, mustAgent(t, h.state, "a0").Status)
	assert.Equal(t, []string{"y"}, mustAgent(t, h.state, "a1").PermittedRoles)
	assert.Equal(t, agents.StatusDraft, mustAgent(t, frozen, "a0").Status)
	assert.Equal(t, []string{"x"}, mustAgent(t, frozen, "a1").PermittedRoles)
	_, ok := frozen.ByID("new")
	assert.False(t, ok)
}

// TestApplyKeepsOldAgentIDs checks that an agent registered before the
// AgentIDCharset rule (an id with '/') still replays and can be updated.
func TestApplyKeepsOldAgentIDs(t *testing.T) {
	t.Parallel()
	var s agents.State
	require.NoError(t, s.Apply(agents.AgentRegistered{Agent: agents.Agent{
		AgentID: "spiffe/claims:v2", AgentRole: "r", Status: agents.StatusDraft,
		CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0,
	}}))
	mustAgent(t, &s, "spiffe/claims:v2")
	name := "Claims"
	_, err := agents.Update(&s, "spiffe/claims:v2", agents.UpdateCommand{DisplayName: &name}, t0)
	require.NoError(t, err)
}

func TestApplyNormalises(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	var s agents.State
	require.NoError(t, s.Apply(agents.AgentRegistered{Agent: agents.Agent{
		AgentID: "a", AgentRole: "r", PermittedRoles: []string{}, Status: agents.StatusDraft,
		CreatedAt: t0.In(cet), UpdatedAt: t0.In(cet), StatusChangedAt: t0.In(cet),
	}}))
	a := mustAgent(t, &s, "a")
	assert.Nil(t, a.PermittedRoles)
	assert.Equal(t, time.UTC, a.CreatedAt.Location())
	assert.Equal(t, time.UTC, a.UpdatedAt.Location())
	assert.Equal(t, time.UTC, a.StatusChangedAt.Location())

	require.NoError(t, s.Apply(agents.AgentStatusChanged{AgentID: "a", From: agents.StatusDraft, To: agents.StatusApproved, ChangedAt: t0.Add(time.Hour).In(cet)}))
	a = mustAgent(t, &s, "a")
	assert.Equal(t, time.UTC, a.StatusChangedAt.Location())
	assert.Equal(t, t0.Add(time.Hour), a.UpdatedAt)
}

func TestApplyInconsistent(t *testing.T) {
	t.Parallel()
	agent := func(f func(a *agents.Agent)) agents.Agent {
		a := agents.Agent{AgentID: "a", AgentRole: "r", Status: agents.StatusDraft, CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0}
		f(&a)
		return a
	}
	tests := []struct {
		name string
		ev   agents.Event
	}{
		{"registered without id", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "" })}},
		{"registered without role", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentRole = "" })}},
		{"registered twice", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing" })}},
		{"registered approved", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "new"; a.Status = agents.StatusApproved })}},
		{"registered unknown status", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "new"; a.Status = "zombie" })}},
		{"registered without created_at", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "new"; a.CreatedAt = time.Time{} })}},
		{"registered without updated_at", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "new"; a.UpdatedAt = time.Time{} })}},
		{"registered without status_changed_at", agents.AgentRegistered{Agent: agent(func(a *agents.Agent) { a.AgentID = "new"; a.StatusChangedAt = time.Time{} })}},
		{"updated unknown id", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "nobody" })}},
		{"updated without role", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing"; a.AgentRole = "" })}},
		{"updated changes status", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing"; a.Status = agents.StatusApproved })}},
		{"updated changes created_at", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing"; a.CreatedAt = t0.Add(time.Second) })}},
		{"updated changes status_changed_at", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing"; a.StatusChangedAt = t0.Add(time.Second) })}},
		{"updated without updated_at", agents.AgentUpdated{Agent: agent(func(a *agents.Agent) { a.AgentID = "existing"; a.UpdatedAt = time.Time{} })}},
		{"status_changed unknown id", agents.AgentStatusChanged{AgentID: "nobody", From: agents.StatusDraft, To: agents.StatusApproved, ChangedAt: t0}},
		{"status_changed wrong from", agents.AgentStatusChanged{AgentID: "existing", From: agents.StatusApproved, To: agents.StatusSuspended, ChangedAt: t0}},
		{"status_changed unknown to", agents.AgentStatusChanged{AgentID: "existing", From: agents.StatusDraft, To: "zombie", ChangedAt: t0}},
		{"status_changed without changed_at", agents.AgentStatusChanged{AgentID: "existing", From: agents.StatusDraft, To: agents.StatusApproved}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.register(agents.RegisterCommand{AgentID: "existing", AgentRole: "r"}, t0)
			before := h.state.Clone()
			err := h.state.Apply(tt.ev)
			require.ErrorIs(t, err, agents.ErrInconsistent)
			assert.Contains(t, err.Error(), tt.ev.EventType())
			require.Equal(t, before, h.state, "unchanged on error")
		})
	}
}

// TestApplyDoesNotRerunCommandRules checks that recorded events replay even
// when the command rules would refuse them today.
func TestApplyDoesNotRerunCommandRules(t *testing.T) {
	t.Parallel()
	var s agents.State
	evs := []agents.Event{
		agents.AgentRegistered{Agent: agents.Agent{
			AgentID: "has space", AgentRole: "any role", PolicyName: "deleted-policy",
			PermittedRoles: []string{"any role", "x", "x"}, Status: agents.StatusDraft,
			CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0,
		}},
		agents.AgentStatusChanged{AgentID: "has space", From: agents.StatusDraft, To: agents.StatusSuspended, ChangedAt: t0},
		agents.AgentStatusChanged{AgentID: "has space", From: agents.StatusSuspended, To: agents.StatusRetired, ChangedAt: t0},
		agents.AgentStatusChanged{AgentID: "has space", From: agents.StatusRetired, To: agents.StatusApproved, ChangedAt: t0},
	}
	for i, ev := range evs {
		require.NoError(t, s.Apply(ev), fmt.Sprint(i))
	}
	assert.Equal(t, agents.StatusApproved, mustAgent(t, &s, "has space").Status)
}
