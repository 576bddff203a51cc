package agents_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
)

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	base := func(f func(c *agents.RegisterCommand)) agents.RegisterCommand {
		c := agents.RegisterCommand{AgentRole: "claims_processor"}
		f(&c)
		return c
	}
	many := make([]string, agents.MaxPermittedRoles+1)
	for i := range many {
		many[i] = "role" + strings.Repeat("x", i)
	}
	tests := []struct {
		name   string
		cmd    agents.RegisterCommand
		fields []string // nil means valid
	}{
		{"minimal", base(func(c *agents.RegisterCommand) {}), nil},
		{"every charset character", base(func(c *agents.RegisterCommand) {
			c.AgentID = "AZaz09._:@-"
			c.AgentRole = "spiffe://corp/claims:v2@eu-west_1.a"
		}), nil},
		{"agent_id 128", base(func(c *agents.RegisterCommand) { c.AgentID = strings.Repeat("a", 128) }), nil},
		{"agent_id 129", base(func(c *agents.RegisterCommand) { c.AgentID = strings.Repeat("a", 129) }), []string{"agent_id"}},
		{"agent_id space", base(func(c *agents.RegisterCommand) { c.AgentID = "my agent" }), []string{"agent_id"}},
		{"agent_id non-ascii", base(func(c *agents.RegisterCommand) { c.AgentID = "agént" }), []string{"agent_id"}},
		{"agent_id plus", base(func(c *agents.RegisterCommand) { c.AgentID = "a+b" }), []string{"agent_id"}},
		{"agent_id control", base(func(c *agents.RegisterCommand) { c.AgentID = "a\x00" }), []string{"agent_id"}},
		{"agent_id slash", base(func(c *agents.RegisterCommand) { c.AgentID = "spiffe/claims" }), []string{"agent_id"}},
		{"agent_id leading dot", base(func(c *agents.RegisterCommand) { c.AgentID = ".hidden" }), []string{"agent_id"}},
		{"agent_id leading dash", base(func(c *agents.RegisterCommand) { c.AgentID = "-rf" }), []string{"agent_id"}},
		{"agent_id leading colon", base(func(c *agents.RegisterCommand) { c.AgentID = ":a" }), []string{"agent_id"}},
		{"agent_id UUID", base(func(c *agents.RegisterCommand) { c.AgentID = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b" }), nil},
		{"agent_id snake", base(func(c *agents.RegisterCommand) { c.AgentID = "rx_verification_agent" }), nil},
		{"agent_id bidi", base(func(c *agents.RegisterCommand) { c.AgentID = "a\u202Eb" }), []string{"agent_id"}},
		{"agent_role slash still allowed", base(func(c *agents.RegisterCommand) { c.AgentRole = "spiffe/claims" }), nil},
		{"agent_role zero-width", base(func(c *agents.RegisterCommand) { c.AgentRole = "claims\u200B" }), []string{"agent_role"}},
		{"display_name bidi", base(func(c *agents.RegisterCommand) { c.DisplayName = "Bot \u202Eyrtne" }), []string{"display_name"}},
		{"display_name zero-width", base(func(c *agents.RegisterCommand) { c.DisplayName = "a\u200Db" }), []string{"display_name"}},
		{"owner ESC", base(func(c *agents.RegisterCommand) { c.Owner = "ops\x1b[31m" }), []string{"owner"}},
		{"framework DEL", base(func(c *agents.RegisterCommand) { c.Framework = "lang\x7f" }), []string{"framework"}},
		{"description bidi mark kept", base(func(c *agents.RegisterCommand) { c.Description = "שלום\u200F\n" }), nil},
		{"description ESC", base(func(c *agents.RegisterCommand) { c.Description = "a\x1b[2Jb" }), []string{"description"}},
		{"agent_role missing", base(func(c *agents.RegisterCommand) { c.AgentRole = "" }), []string{"agent_role"}},
		{"agent_role 128", base(func(c *agents.RegisterCommand) { c.AgentRole = strings.Repeat("r", 128) }), nil},
		{"agent_role 129", base(func(c *agents.RegisterCommand) { c.AgentRole = strings.Repeat("r", 129) }), []string{"agent_role"}},
		{"agent_role space", base(func(c *agents.RegisterCommand) { c.AgentRole = "claims processor" }), []string{"agent_role"}},
		{"agent_role star", base(func(c *agents.RegisterCommand) { c.AgentRole = "claims*" }), []string{"agent_role"}},
		{"display_name 128", base(func(c *agents.RegisterCommand) { c.DisplayName = strings.Repeat("é", 128) }), nil},
		{"display_name 129", base(func(c *agents.RegisterCommand) { c.DisplayName = strings.Repeat("é", 129) }), []string{"display_name"}},
		{"display_name newline", base(func(c *agents.RegisterCommand) { c.DisplayName = "a\nb" }), []string{"display_name"}},
		{"display_name invalid utf8", base(func(c *agents.RegisterCommand) { c.DisplayName = "a\xffb" }), []string{"display_name"}},
		{"description 1024", base(func(c *agents.RegisterCommand) { c.Description = strings.Repeat("ü", 1024) }), nil},
		{"description 1025", base(func(c *agents.RegisterCommand) { c.Description = strings.Repeat("u", 1025) }), []string{"description"}},
		{"description lines and tabs", base(func(c *agents.RegisterCommand) { c.Description = "a\tb\r\nc\n" }), nil},
		{"description other control", base(func(c *agents.RegisterCommand) { c.Description = "a\x07b" }), []string{"description"}},
		{"description invalid utf8", base(func(c *agents.RegisterCommand) { c.Description = "\xc3" }), []string{"description"}},
		{"owner 128", base(func(c *agents.RegisterCommand) { c.Owner = strings.Repeat("o", 128) }), nil},
		{"owner 129", base(func(c *agents.RegisterCommand) { c.Owner = strings.Repeat("o", 129) }), []string{"owner"}},
		{"owner control", base(func(c *agents.RegisterCommand) { c.Owner = "a\tb" }), []string{"owner"}},
		{"owner_team 128", base(func(c *agents.RegisterCommand) { c.OwnerTeam = strings.Repeat("t", 128) }), nil},
		{"owner_team 129", base(func(c *agents.RegisterCommand) { c.OwnerTeam = strings.Repeat("t", 129) }), []string{"owner_team"}},
		{"framework 128", base(func(c *agents.RegisterCommand) { c.Framework = strings.Repeat("f", 128) }), nil},
		{"framework 129", base(func(c *agents.RegisterCommand) { c.Framework = strings.Repeat("f", 129) }), []string{"framework"}},
		{"framework invalid utf8", base(func(c *agents.RegisterCommand) { c.Framework = "\xff" }), []string{"framework"}},
		{"policy_name of an existing policy", base(func(c *agents.RegisterCommand) { c.PolicyName = "claims" }), nil},
		{"policy_name of no policy yet", base(func(c *agents.RegisterCommand) { c.PolicyName = "nope" }), nil},
		{"policy_name 256", base(func(c *agents.RegisterCommand) { c.PolicyName = strings.Repeat("p", 256) }), nil},
		{"policy_name 257", base(func(c *agents.RegisterCommand) { c.PolicyName = strings.Repeat("p", 257) }), []string{"policy_name"}},
		{"policy_name control", base(func(c *agents.RegisterCommand) { c.PolicyName = "a\nb" }), []string{"policy_name"}},
		{"permitted_roles valid", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"auditor", "reader"} }), nil},
		{"permitted_roles empty", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{} }), nil},
		{"permitted_roles max", base(func(c *agents.RegisterCommand) { c.PermittedRoles = many[:agents.MaxPermittedRoles] }), nil},
		{"permitted_roles too many", base(func(c *agents.RegisterCommand) { c.PermittedRoles = many }), []string{"permitted_roles"}},
		{"permitted role empty", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"a", ""} }), []string{"permitted_roles[1]"}},
		{"permitted role bad char", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"a b"} }), []string{"permitted_roles[0]"}},
		{"permitted role 129", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{strings.Repeat("p", 129)} }), []string{"permitted_roles[0]"}},
		{"permitted role duplicate", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"a", "b", "a", "a"} }), []string{"permitted_roles[2]", "permitted_roles[3]"}},
		{"permitted roles include own role", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"reader", "claims_processor"} }), nil},
		{"permitted roles case differ", base(func(c *agents.RegisterCommand) { c.PermittedRoles = []string{"A", "a", "Claims_processor"} }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := agents.Register(&agents.State{}, tt.cmd, t0, agentID(1))
			if tt.fields == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.cmd.AgentRole, ev.Agent.AgentRole)
				return
			}
			assert.Equal(t, tt.fields, validationFields(t, err))
			var ve *agents.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Contains(t, err.Error(), tt.fields[0])
			assert.False(t, errors.Is(err, agents.ErrConflict))
			assert.Zero(t, ev)
		})
	}
}

func TestRegisterReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cmd := agents.RegisterCommand{
		AgentID:        "bad id",
		DisplayName:    "x\x00",
		Description:    strings.Repeat("d", 1025),
		Owner:          strings.Repeat("o", 129),
		OwnerTeam:      strings.Repeat("t", 129),
		Framework:      strings.Repeat("f", 129),
		PolicyName:     "bad\x00name",
		PermittedRoles: []string{"ok", "ok", "not ok"},
	}
	_, err := agents.Register(&agents.State{}, cmd, t0, agentID(1))
	assert.Equal(t, []string{
		"agent_id", "agent_role", "display_name", "description", "owner", "owner_team", "framework",
		"policy_name", "permitted_roles[1]", "permitted_roles[2]",
	}, validationFields(t, err))
}

func TestRegisterKeepsADanglingPolicyName(t *testing.T) {
	t.Parallel()
	ev, err := agents.Register(&agents.State{}, agents.RegisterCommand{AgentRole: "r", PolicyName: "ghost"}, t0, agentID(1))
	require.NoError(t, err, "a policy_name is a binding by name, resolved at evaluation")
	assert.Equal(t, "ghost", ev.Agent.PolicyName)
}

func TestRegisterEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 13, 0, 0, 5, time.FixedZone("CET", 3600))
	cmd := agents.RegisterCommand{
		AgentRole:      "claims_processor",
		DisplayName:    "Claims bot",
		Description:    "Processes claims.\nNightly.",
		Owner:          "alice@example.com",
		OwnerTeam:      "claims",
		Framework:      "langgraph",
		PolicyName:     "claims",
		PermittedRoles: []string{"reader", "auditor"},
	}
	ev, err := agents.Register(&agents.State{}, cmd, now, agentID(7))
	require.NoError(t, err)
	utc := now.UTC()
	assert.Equal(t, agents.AgentRegistered{Agent: agents.Agent{
		AgentID:         agentID(7),
		AgentRole:       "claims_processor",
		DisplayName:     "Claims bot",
		Description:     "Processes claims.\nNightly.",
		Owner:           "alice@example.com",
		OwnerTeam:       "claims",
		Framework:       "langgraph",
		PolicyName:      "claims",
		PermittedRoles:  []string{"reader", "auditor"},
		Status:          agents.StatusDraft,
		CreatedAt:       utc,
		UpdatedAt:       utc,
		StatusChangedAt: utc,
	}}, ev)
	assert.Equal(t, time.UTC, ev.Agent.CreatedAt.Location())

	// The event does not share the command's slice.
	cmd.PermittedRoles[0] = "changed"
	assert.Equal(t, "reader", ev.Agent.PermittedRoles[0])

	// An empty permitted_roles is normalised to nil.
	ev, err = agents.Register(&agents.State{}, agents.RegisterCommand{AgentRole: "r", PermittedRoles: []string{}}, now, agentID(1))
	require.NoError(t, err)
	assert.Nil(t, ev.Agent.PermittedRoles)
}

func TestRegisterID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		agentID string
		newID   string
		want    string
	}{
		{"generated id used when absent", "", agentID(9), agentID(9)},
		{"given id wins", "claims-bot-1", agentID(9), "claims-bot-1"},
		{"given id with empty newID", "claims-bot-1", "", "claims-bot-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := agents.Register(&agents.State{}, agents.RegisterCommand{AgentID: tt.agentID, AgentRole: "r"}, t0, tt.newID)
			require.NoError(t, err)
			assert.Equal(t, tt.want, ev.Agent.AgentID)
		})
	}
}

func TestRegisterBadGeneratedID(t *testing.T) {
	t.Parallel()
	for _, newID := range []string{"", "agent 1", strings.Repeat("a", 129)} {
		_, err := agents.Register(&agents.State{}, agents.RegisterCommand{AgentRole: "r"}, t0, newID)
		require.Error(t, err, "newID %q", newID)
		var ve *agents.ValidationError
		assert.False(t, errors.As(err, &ve), "a caller bug is not a 422")
		assert.False(t, errors.Is(err, agents.ErrConflict))
	}
	// A bad request is still reported as such, before the caller bug.
	_, err := agents.Register(&agents.State{}, agents.RegisterCommand{}, t0, "")
	assert.Equal(t, []string{"agent_role"}, validationFields(t, err))
}

func TestRegisterDuplicate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	given := h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "r"}, t0)
	generated := h.register(agents.RegisterCommand{AgentRole: "r"}, t0)
	retired := h.register(agents.RegisterCommand{AgentID: "old-bot", AgentRole: "r"}, t0)
	h.changeStatus(retired.AgentID, agents.StatusRetired, t0)
	before := h.state.Clone()

	for _, id := range []string{given.AgentID, generated.AgentID} {
		_, err := agents.Register(h.state, agents.RegisterCommand{AgentID: id, AgentRole: "other"}, t0, agentID(99))
		require.ErrorIs(t, err, agents.ErrAgentExists, id)
		require.ErrorIs(t, err, agents.ErrConflict)
		assert.Contains(t, err.Error(), id)
	}
	// A retired agent's id is never reused; the error says so.
	_, err := agents.Register(h.state, agents.RegisterCommand{AgentID: retired.AgentID, AgentRole: "r"}, t0, agentID(99))
	require.ErrorIs(t, err, agents.ErrRetiredID)
	require.ErrorIs(t, err, agents.ErrConflict)
	require.NotErrorIs(t, err, agents.ErrAgentExists)
	assert.Equal(t, "agents: agent_id belongs to a retired agent and is never reused: agent_id 'old-bot' was retired at "+
		t0.UTC().Format(time.RFC3339)+"; register without agent_id to get a fresh one", err.Error())
	// Without an agent_id the same role registers a fresh agent.
	fresh, err := agents.Register(h.state, agents.RegisterCommand{AgentRole: "r"}, t0, agentID(99))
	require.NoError(t, err)
	assert.Equal(t, agentID(99), fresh.Agent.AgentID)
	// A generated id that collides is refused too.
	_, err = agents.Register(h.state, agents.RegisterCommand{AgentRole: "r"}, t0, generated.AgentID)
	require.ErrorIs(t, err, agents.ErrAgentExists)
	// Validation comes first.
	_, err = agents.Register(h.state, agents.RegisterCommand{AgentID: "bot"}, t0, agentID(99))
	assert.Equal(t, []string{"agent_role"}, validationFields(t, err))

	require.Equal(t, before, h.state, "deciders never mutate")
}

func TestUpdatePartial(t *testing.T) {
	t.Parallel()
	full := agents.RegisterCommand{
		AgentID:        "bot",
		AgentRole:      "claims_processor",
		DisplayName:    "Claims bot",
		Description:    "desc",
		Owner:          "alice",
		OwnerTeam:      "claims",
		Framework:      "langgraph",
		PolicyName:     "claims",
		PermittedRoles: []string{"reader"},
	}
	t1 := t0.Add(time.Hour)
	tests := []struct {
		name   string
		cmd    agents.UpdateCommand
		change func(a *agents.Agent)
	}{
		{"nothing", agents.UpdateCommand{}, func(a *agents.Agent) {}},
		{"agent_role", agents.UpdateCommand{AgentRole: ptr("adjuster")}, func(a *agents.Agent) { a.AgentRole = "adjuster" }},
		{"display_name", agents.UpdateCommand{DisplayName: ptr("New")}, func(a *agents.Agent) { a.DisplayName = "New" }},
		{"display_name cleared", agents.UpdateCommand{DisplayName: ptr("")}, func(a *agents.Agent) { a.DisplayName = "" }},
		{"description", agents.UpdateCommand{Description: ptr("d2")}, func(a *agents.Agent) { a.Description = "d2" }},
		{"owner", agents.UpdateCommand{Owner: ptr("bob")}, func(a *agents.Agent) { a.Owner = "bob" }},
		{"owner_team", agents.UpdateCommand{OwnerTeam: ptr("ops")}, func(a *agents.Agent) { a.OwnerTeam = "ops" }},
		{"framework", agents.UpdateCommand{Framework: ptr("crewai")}, func(a *agents.Agent) { a.Framework = "crewai" }},
		{"rebind policy", agents.UpdateCommand{PolicyName: ptr("billing")}, func(a *agents.Agent) { a.PolicyName = "billing" }},
		{"unbind policy", agents.UpdateCommand{PolicyName: ptr("")}, func(a *agents.Agent) { a.PolicyName = "" }},
		{"replace permitted_roles", agents.UpdateCommand{PermittedRoles: ptr([]string{"auditor", "reader"})},
			func(a *agents.Agent) { a.PermittedRoles = []string{"auditor", "reader"} }},
		{"clear permitted_roles", agents.UpdateCommand{PermittedRoles: ptr([]string{})}, func(a *agents.Agent) { a.PermittedRoles = nil }},
		{"clear permitted_roles with nil list", agents.UpdateCommand{PermittedRoles: ptr([]string(nil))}, func(a *agents.Agent) { a.PermittedRoles = nil }},
		{"swap role into permitted_roles", agents.UpdateCommand{AgentRole: ptr("reader"), PermittedRoles: ptr([]string{"claims_processor"})},
			func(a *agents.Agent) { a.AgentRole = "reader"; a.PermittedRoles = []string{"claims_processor"} }},
		{"several", agents.UpdateCommand{Owner: ptr("bob"), Framework: ptr("")}, func(a *agents.Agent) { a.Owner = "bob"; a.Framework = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			before := h.register(full, t0)
			h.changeStatus("bot", agents.StatusApproved, t0.Add(time.Minute))
			approved := mustAgent(t, h.state, "bot")

			got := h.update("bot", tt.cmd, t1)

			want := approved
			tt.change(&want)
			want.UpdatedAt = t1
			assert.Equal(t, want, got)
			assert.Equal(t, want, mustAgent(t, h.state, "bot"))
			assert.Equal(t, agents.StatusApproved, got.Status, "update never changes status")
			assert.Equal(t, before.CreatedAt, got.CreatedAt)
			assert.Equal(t, t0.Add(time.Minute), got.StatusChangedAt)
			assert.Equal(t, h.state, h.replay())
		})
	}
}

func TestUpdateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cmd    agents.UpdateCommand
		fields []string
	}{
		{"agent_role empty", agents.UpdateCommand{AgentRole: ptr("")}, []string{"agent_role"}},
		{"agent_role bad char", agents.UpdateCommand{AgentRole: ptr("a b")}, []string{"agent_role"}},
		{"agent_role 129", agents.UpdateCommand{AgentRole: ptr(strings.Repeat("r", 129))}, []string{"agent_role"}},
		{"display_name 129", agents.UpdateCommand{DisplayName: ptr(strings.Repeat("n", 129))}, []string{"display_name"}},
		{"description 1025", agents.UpdateCommand{Description: ptr(strings.Repeat("d", 1025))}, []string{"description"}},
		{"owner control", agents.UpdateCommand{Owner: ptr("\x1b")}, []string{"owner"}},
		{"owner_team 129", agents.UpdateCommand{OwnerTeam: ptr(strings.Repeat("t", 129))}, []string{"owner_team"}},
		{"framework invalid utf8", agents.UpdateCommand{Framework: ptr("\xff")}, []string{"framework"}},
		{"policy_name control", agents.UpdateCommand{PolicyName: ptr("\x1b")}, []string{"policy_name"}},
		{"permitted role duplicate", agents.UpdateCommand{PermittedRoles: ptr([]string{"x", "x"})}, []string{"permitted_roles[1]"}},
		{"permitted role invalid", agents.UpdateCommand{PermittedRoles: ptr([]string{""})}, []string{"permitted_roles[0]"}},
		{"every problem", agents.UpdateCommand{
			AgentRole: ptr(""), DisplayName: ptr("\n"), PolicyName: ptr("\x00"), PermittedRoles: ptr([]string{"a", "a"}),
		}, []string{"agent_role", "display_name", "policy_name", "permitted_roles[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "claims_processor", PermittedRoles: []string{"reader"}}, t0)
			before := h.state.Clone()
			ev, err := agents.Update(h.state, "bot", tt.cmd, t0.Add(time.Hour))
			assert.Equal(t, tt.fields, validationFields(t, err))
			assert.Zero(t, ev)
			require.Equal(t, before, h.state)
		})
	}
}

func TestUpdateLeavesUntouchedFieldsUnchecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "r", PolicyName: "claims"}, t0)
	// The bound policy may be gone: a binding is never re-checked.
	ev, err := agents.Update(h.state, "bot", agents.UpdateCommand{Owner: ptr("bob")}, t0)
	require.NoError(t, err)
	assert.Equal(t, "claims", ev.Agent.PolicyName)
	// Unbinding.
	ev, err = agents.Update(h.state, "bot", agents.UpdateCommand{PolicyName: ptr("")}, t0)
	require.NoError(t, err)
	assert.Empty(t, ev.Agent.PolicyName)
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "gone", AgentRole: "r"}, t0)
	h.changeStatus("gone", agents.StatusRetired, t0)
	h.register(agents.RegisterCommand{AgentID: "paused", AgentRole: "r"}, t0)
	h.changeStatus("paused", agents.StatusApproved, t0)
	h.changeStatus("paused", agents.StatusSuspended, t0)

	tests := []struct {
		name string
		id   string
		cmd  agents.UpdateCommand
		want error
	}{
		{"unknown id", "nobody", agents.UpdateCommand{Owner: ptr("x")}, agents.ErrNotFound},
		{"unknown id beats validation", "nobody", agents.UpdateCommand{AgentRole: ptr("")}, agents.ErrNotFound},
		{"retired", "gone", agents.UpdateCommand{Owner: ptr("x")}, agents.ErrRetired},
		{"retired, empty update", "gone", agents.UpdateCommand{}, agents.ErrRetired},
		{"suspended may be updated", "paused", agents.UpdateCommand{Owner: ptr("x")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := agents.Update(h.state, tt.id, tt.cmd, t0)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.id)
			if tt.want == agents.ErrRetired {
				require.ErrorIs(t, err, agents.ErrConflict)
			}
		})
	}
	t.Run("validation before retired", func(t *testing.T) {
		t.Parallel()
		_, err := agents.Update(h.state, "gone", agents.UpdateCommand{AgentRole: ptr("")}, t0)
		assert.Equal(t, []string{"agent_role"}, validationFields(t, err))
	})
}

var allStatuses = []agents.Status{agents.StatusDraft, agents.StatusApproved, agents.StatusSuspended, agents.StatusRetired}

// pathTo lists legal transitions from draft that reach each status.
var pathTo = map[agents.Status][]agents.Status{
	agents.StatusDraft:     nil,
	agents.StatusApproved:  {agents.StatusApproved},
	agents.StatusSuspended: {agents.StatusApproved, agents.StatusSuspended},
	agents.StatusRetired:   {agents.StatusRetired},
}

func TestChangeStatusEveryPair(t *testing.T) {
	t.Parallel()
	legal := map[[2]agents.Status]bool{
		{agents.StatusDraft, agents.StatusApproved}:     true,
		{agents.StatusDraft, agents.StatusRetired}:      true,
		{agents.StatusApproved, agents.StatusSuspended}: true,
		{agents.StatusApproved, agents.StatusRetired}:   true,
		{agents.StatusSuspended, agents.StatusApproved}: true,
		{agents.StatusSuspended, agents.StatusRetired}:  true,
	}
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			isLegal := legal[[2]agents.Status{from, to}]
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				t.Parallel()
				assert.Equal(t, isLegal, agents.CanTransition(from, to))

				h := newHarness(t)
				h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "r"}, t0)
				for i, st := range pathTo[from] {
					h.changeStatus("bot", st, t0.Add(time.Duration(i+1)*time.Minute))
				}
				before := h.state.Clone()
				now := t0.Add(time.Hour)

				ev, err := agents.ChangeStatus(h.state, "bot", string(to), now)
				require.Equal(t, before, h.state, "deciders never mutate")
				if !isLegal {
					require.ErrorIs(t, err, agents.ErrConflict)
					var te *agents.TransitionError
					require.ErrorAs(t, err, &te)
					assert.Equal(t, agents.TransitionError{AgentID: "bot", From: from, To: to}, *te)
					assert.Contains(t, err.Error(), string(from))
					assert.Contains(t, err.Error(), string(to))
					assert.Equal(t, from == agents.StatusRetired, errors.Is(err, agents.ErrRetired))
					var ve *agents.ValidationError
					assert.False(t, errors.As(err, &ve))
					assert.Zero(t, ev)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, agents.AgentStatusChanged{AgentID: "bot", From: from, To: to, ChangedAt: now}, ev)
				h.commit(ev)
				a := mustAgent(t, h.state, "bot")
				assert.Equal(t, to, a.Status)
				assert.Equal(t, now, a.StatusChangedAt)
				assert.Equal(t, now, a.UpdatedAt)
				assert.Equal(t, t0, a.CreatedAt)
				assert.Equal(t, to == agents.StatusApproved, a.IsApproved())
				assert.Equal(t, h.state, h.replay())
			})
		}
	}
}

func TestRetiredIsFinal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "r"}, t0)
	h.changeStatus("bot", agents.StatusApproved, t0)
	ev, err := agents.Retire(h.state, "bot", t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, agents.AgentStatusChanged{AgentID: "bot", From: agents.StatusApproved, To: agents.StatusRetired, ChangedAt: t0.Add(time.Hour)}, ev)
	h.commit(ev)

	for _, to := range allStatuses {
		_, err := agents.ChangeStatus(h.state, "bot", string(to), t0.Add(2*time.Hour))
		require.ErrorIs(t, err, agents.ErrRetired, "to %s", to)
		require.ErrorIs(t, err, agents.ErrConflict)
	}
	_, err = agents.Retire(h.state, "bot", t0.Add(2*time.Hour))
	require.ErrorIs(t, err, agents.ErrRetired)
	_, err = agents.Update(h.state, "bot", agents.UpdateCommand{Owner: ptr("x")}, t0)
	require.ErrorIs(t, err, agents.ErrRetired)
	_, err = agents.Register(h.state, agents.RegisterCommand{AgentID: "bot", AgentRole: "r"}, t0, agentID(9))
	require.ErrorIs(t, err, agents.ErrRetiredID)
	assert.Equal(t, agents.StatusRetired, mustAgent(t, h.state, "bot").Status, "retired agents stay in the registry")
}

func TestChangeStatusErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(agents.RegisterCommand{AgentID: "bot", AgentRole: "r"}, t0)
	tests := []struct {
		name  string
		id    string
		to    string
		field string
		want  error
	}{
		{"unknown status", "bot", "deleted", "status", nil},
		{"empty status", "bot", "", "status", nil},
		{"wrong case", "bot", "Approved", "status", nil},
		{"unknown status beats unknown id", "nobody", "gone", "status", nil},
		{"unknown id", "nobody", "approved", "", agents.ErrNotFound},
		{"same status", "bot", "draft", "", agents.ErrConflict},
		{"illegal", "bot", "suspended", "", agents.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := agents.ChangeStatus(h.state, tt.id, tt.to, t0)
			assert.Zero(t, ev)
			if tt.field != "" {
				assert.Equal(t, []string{tt.field}, validationFields(t, err))
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
	_, err := agents.Retire(h.state, "nobody", t0)
	require.ErrorIs(t, err, agents.ErrNotFound)
}

func TestTransitionErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  agents.TransitionError
		want string
	}{
		{agents.TransitionError{AgentID: "a", From: "draft", To: "suspended"}, "agents: agent 'a' cannot change status from draft to suspended"},
		{agents.TransitionError{AgentID: "a", From: "approved", To: "approved"}, "agents: agent 'a' is already approved"},
		{agents.TransitionError{AgentID: "a", From: "retired", To: "approved"}, "agents: agent 'a' is retired; retired is final (cannot change to approved)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}
