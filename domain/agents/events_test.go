package agents_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
)

func sampleAgent() agents.Agent {
	return agents.Agent{
		AgentID:         "claims-bot",
		AgentRole:       "claims_processor",
		DisplayName:     "Claims bot",
		Description:     "Line 1\nLine 2",
		Owner:           "alice@example.com",
		OwnerTeam:       "claims",
		Framework:       "langgraph",
		PolicyName:      "claims",
		PermittedRoles:  []string{"reader", "auditor"},
		Status:          agents.StatusDraft,
		CreatedAt:       t0.Add(123456789 * time.Nanosecond),
		UpdatedAt:       t0.Add(123456789 * time.Nanosecond),
		StatusChangedAt: t0.Add(123456789 * time.Nanosecond),
	}
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	full := sampleAgent()
	updated := full
	updated.Status = agents.StatusApproved
	updated.UpdatedAt = t0.Add(time.Hour)
	tests := []struct {
		name     string
		ev       agents.Event
		wantType string
		wantJSON string
	}{
		{
			name:     "registered",
			ev:       agents.AgentRegistered{Agent: full},
			wantType: "agent.registered",
			wantJSON: `{"agent":{"agent_id":"claims-bot","agent_role":"claims_processor","display_name":"Claims bot","description":"Line 1\nLine 2","owner":"alice@example.com","owner_team":"claims","framework":"langgraph","policy_name":"claims","permitted_roles":["reader","auditor"],"status":"draft","created_at":"2026-03-01T12:00:00.123456789Z","updated_at":"2026-03-01T12:00:00.123456789Z","status_changed_at":"2026-03-01T12:00:00.123456789Z"}}`,
		},
		{
			name:     "registered minimal",
			ev:       agents.AgentRegistered{Agent: agents.Agent{AgentID: "a", AgentRole: "r", Status: agents.StatusDraft, CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0}},
			wantType: "agent.registered",
			wantJSON: `{"agent":{"agent_id":"a","agent_role":"r","status":"draft","created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z","status_changed_at":"2026-03-01T12:00:00Z"}}`,
		},
		{
			name:     "updated",
			ev:       agents.AgentUpdated{Agent: updated},
			wantType: "agent.updated",
			wantJSON: `{"agent":{"agent_id":"claims-bot","agent_role":"claims_processor","display_name":"Claims bot","description":"Line 1\nLine 2","owner":"alice@example.com","owner_team":"claims","framework":"langgraph","policy_name":"claims","permitted_roles":["reader","auditor"],"status":"approved","created_at":"2026-03-01T12:00:00.123456789Z","updated_at":"2026-03-01T13:00:00Z","status_changed_at":"2026-03-01T12:00:00.123456789Z"}}`,
		},
		{
			name:     "status changed",
			ev:       agents.AgentStatusChanged{AgentID: "claims-bot", From: agents.StatusApproved, To: agents.StatusSuspended, ChangedAt: t0},
			wantType: "agent.status_changed",
			wantJSON: `{"agent_id":"claims-bot","from":"approved","to":"suspended","changed_at":"2026-03-01T12:00:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantType, tt.ev.EventType())
			typ, payload, err := encode(tt.ev)
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantJSON, string(payload), "byte-exact, fixed field order")

			got, err := agents.Decode(typ, payload)
			require.NoError(t, err)
			assert.Equal(t, tt.ev, got)

			// Pointers encode the same way, and so does json.Marshal (as used
			// by the domain package).
			_, viaPtr, err := encode(ptrTo(tt.ev))
			require.NoError(t, err)
			assert.Equal(t, payload, viaPtr)
			viaJSON, err := json.Marshal(tt.ev)
			require.NoError(t, err)
			assert.Equal(t, payload, viaJSON)
		})
	}
}

func ptrTo(e agents.Event) agents.Event {
	switch v := e.(type) {
	case agents.AgentRegistered:
		return &v
	case agents.AgentUpdated:
		return &v
	case agents.AgentStatusChanged:
		return &v
	}
	panic("unknown event")
}

func TestDecodeEmptyPermittedRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typ     string
		payload string
	}{
		{"registered absent", "agent.registered", `{"agent":{"agent_id":"a","agent_role":"r","status":"draft"}}`},
		{"registered empty", "agent.registered", `{"agent":{"agent_id":"a","agent_role":"r","permitted_roles":[],"status":"draft"}}`},
		{"registered null", "agent.registered", `{"agent":{"agent_id":"a","agent_role":"r","permitted_roles":null,"status":"draft"}}`},
		{"updated empty", "agent.updated", `{"agent":{"agent_id":"a","agent_role":"r","permitted_roles":[],"status":"draft"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := agents.Decode(tt.typ, []byte(tt.payload))
			require.NoError(t, err)
			switch e := ev.(type) {
			case agents.AgentRegistered:
				assert.Nil(t, e.Agent.PermittedRoles)
			case agents.AgentUpdated:
				assert.Nil(t, e.Agent.PermittedRoles)
			default:
				t.Fatalf("decoded %T", ev)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	t.Parallel()
	ev, err := agents.Decode("agent.status_changed", []byte(`{"agent_id":"a","from":"draft","to":"approved","changed_at":"2026-03-01T12:00:00Z","reason":"later field"}`))
	require.NoError(t, err)
	assert.Equal(t, agents.AgentStatusChanged{AgentID: "a", From: "draft", To: "approved", ChangedAt: t0}, ev)
}

type otherEvent struct{}

func (otherEvent) EventType() string { return "agent.other" }

func TestUnknownEvents(t *testing.T) {
	t.Parallel()
	_, err := agents.Decode("agent.deleted", []byte(`{}`))
	require.ErrorIs(t, err, agents.ErrUnknownEvent)
	_, err = agents.Decode("key.created", []byte(`{}`))
	require.ErrorIs(t, err, agents.ErrUnknownEvent)

	for _, ev := range []agents.Event{otherEvent{}, (*agents.AgentRegistered)(nil), (*agents.AgentUpdated)(nil), (*agents.AgentStatusChanged)(nil), nil} {
		require.ErrorIs(t, (&agents.State{}).Apply(ev), agents.ErrUnknownEvent, "%T", ev)
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"agent.registered", "agent.updated", "agent.status_changed"} {
		_, err := agents.Decode(typ, []byte(`{"agent":`))
		require.Error(t, err, typ)
		assert.False(t, errors.Is(err, agents.ErrUnknownEvent))
		assert.Contains(t, err.Error(), typ)
	}
}

// TestReplayEqualsLive drives a history through the deciders and checks that
// folding the encoded log gives exactly the live state, at every step.
func TestReplayEqualsLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	steps := []func(){
		func() {
			h.register(agents.RegisterCommand{AgentRole: "claims_processor", PermittedRoles: []string{"reader"}, PolicyName: "claims", Framework: "langgraph"}, at(0))
		},
		func() {
			h.register(agents.RegisterCommand{AgentID: "billing-bot", AgentRole: "billing", Owner: "bob", PermittedRoles: []string{}}, at(1))
		},
		func() { h.changeStatus(agentID(1), agents.StatusApproved, at(2)) },
		func() {
			h.update(agentID(1), agents.UpdateCommand{PolicyName: ptr(""), PermittedRoles: ptr([]string{"reader", "auditor"})}, at(3))
		},
		func() { h.changeStatus(agentID(1), agents.StatusSuspended, at(4)) },
		func() { h.update("billing-bot", agents.UpdateCommand{Description: ptr("bills\n")}, at(5)) },
		func() { h.changeStatus(agentID(1), agents.StatusApproved, at(6)) },
		func() { h.changeStatus("billing-bot", agents.StatusRetired, at(7)) },
		func() { h.update(agentID(1), agents.UpdateCommand{PermittedRoles: ptr([]string(nil))}, at(8)) },
	}
	for i, step := range steps {
		step()
		require.Equal(t, h.state, h.replay(), "after step %d", i)
	}
	require.Len(t, h.log, len(steps))

	// Decoding every logged event gives back exactly what was committed.
	live := h.state.List(agents.Filter{})
	replayed := h.replay().List(agents.Filter{})
	assert.Equal(t, live, replayed)
}
