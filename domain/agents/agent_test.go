package agents_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
)

func TestMayClaim(t *testing.T) {
	t.Parallel()
	withRoles := agents.Agent{AgentID: "a", AgentRole: "claims_processor", PermittedRoles: []string{"reader", "auditor"}}
	noRoles := agents.Agent{AgentID: "b", AgentRole: "billing"}
	tests := []struct {
		name  string
		agent agents.Agent
		role  string
		want  bool
	}{
		{"own role", withRoles, "claims_processor", true},
		{"first permitted", withRoles, "reader", true},
		{"last permitted", withRoles, "auditor", true},
		{"other role", withRoles, "billing", false},
		{"case-sensitive", withRoles, "Reader", false},
		{"prefix", withRoles, "claims", false},
		{"empty", withRoles, "", false},
		{"own role without permitted", noRoles, "billing", true},
		{"other without permitted", noRoles, "reader", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.agent.MayClaim(tt.role))
		})
	}
}

// TestMayClaimDoesNotAllocate is not parallel: testing.AllocsPerRun refuses
// to run in a parallel test.
func TestMayClaimDoesNotAllocate(t *testing.T) {
	a := agents.Agent{AgentID: "a", AgentRole: "claims_processor", PermittedRoles: []string{"reader", "auditor"}}
	allocs := testing.AllocsPerRun(100, func() {
		if !a.MayClaim("auditor") || a.MayClaim("billing") {
			panic("wrong answer")
		}
	})
	assert.Zero(t, allocs)
}

func TestClaimableRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		agent agents.Agent
		want  []string
	}{
		{"own role only", agents.Agent{AgentRole: "billing"}, []string{"billing"}},
		{"own role first, then permitted in order", agents.Agent{AgentRole: "claims", PermittedRoles: []string{"z", "a"}}, []string{"claims", "z", "a"}},
		{"permitted as given when they list the own role", agents.Agent{AgentRole: "dispensing_agent", PermittedRoles: []string{"rx_verification_agent", "dispensing_agent"}},
			[]string{"rx_verification_agent", "dispensing_agent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.agent.ClaimableRoles()
			assert.Equal(t, tt.want, got)
			got[0] = "changed"
			if len(got) > 1 {
				got[1] = "changed"
				assert.NotEqual(t, "changed", tt.agent.PermittedRoles[0], "a new slice")
			}
			assert.NotEqual(t, "changed", tt.agent.AgentRole)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"draft", "approved", "suspended", "retired"} {
		st, err := agents.ParseStatus(s)
		require.NoError(t, err)
		assert.Equal(t, agents.Status(s), st)
		assert.True(t, st.Valid())
	}
	for _, s := range []string{"", "Draft", "active", "deleted", " approved"} {
		st, err := agents.ParseStatus(s)
		var ve *agents.ValidationError
		require.ErrorAs(t, err, &ve, s)
		assert.Equal(t, "status", ve.Field)
		assert.Empty(t, st)
		assert.False(t, agents.Status(s).Valid())
	}
}
