package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

func TestDenyConstructors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		got        policy.Decision
		reason     string
		policyName string
		denialType string
	}{
		{
			name:       "agent not registered",
			got:        policy.DenyAgentNotRegistered("agent-9"),
			reason:     "Agent 'agent-9' is not registered",
			policyName: "agent_not_registered",
			denialType: "identity",
		},
		{
			name:       "agent not approved",
			got:        policy.DenyAgentNotApproved("agent-9", "pending"),
			reason:     "Agent 'agent-9' is not approved (status: 'pending')",
			policyName: "agent_not_approved",
			denialType: "identity",
		},
		{
			name:       "role not permitted",
			got:        policy.DenyRoleNotPermitted("agent-9", "admin", []string{"advisor", "analyst"}),
			reason:     "Agent 'agent-9' is not permitted to act as 'admin' — permitted: ['advisor', 'analyst']",
			policyName: "role_not_permitted",
			denialType: "role",
		},
		{
			name:       "role not permitted with no roles",
			got:        policy.DenyRoleNotPermitted("agent-9", "admin", nil),
			reason:     "Agent 'agent-9' is not permitted to act as 'admin' — permitted: []",
			policyName: "role_not_permitted",
			denialType: "role",
		},
		{
			name:       "role list quotes like Python repr",
			got:        policy.DenyRoleNotPermitted("a", "b", []string{"o'brien", `say "hi"`, `both'"`, `back\slash`, "tab\t"}),
			reason:     `Agent 'a' is not permitted to act as 'b' — permitted: ["o'brien", 'say "hi"', 'both\'"', 'back\\slash', 'tab\t']`,
			policyName: "role_not_permitted",
			denialType: "role",
		},
		{
			name:       "session owned by another role",
			got:        policy.DenySessionOwned("6a4db3cf-0c1d-4e2f-9a8b-000000000000", "advisor", "analyst"),
			reason:     "Session '6a4db3cf…' is owned by 'advisor' — 'analyst' cannot access another agent's context",
			policyName: "cross_agent_isolation",
			denialType: "session",
		},
		{
			name:       "session expired",
			got:        policy.DenySessionExpired("6a4db3cf-0c1d"),
			reason:     "Session '6a4db3cf…' has expired",
			policyName: "session_expired",
			denialType: "session",
		},
		{
			name:       "no policy",
			got:        policy.DenyNoPolicy("advisor"),
			reason:     "No policy found for role 'advisor'",
			policyName: "default_deny",
			denialType: "policy",
		},
		{
			name:       "key bound to another agent",
			got:        policy.DenyKeyAgentMismatch("agent-1", "agent-2"),
			reason:     "Key is bound to agent 'agent-1', not 'agent-2'",
			policyName: "key_agent_mismatch",
			denialType: "identity",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.False(t, tc.got.Allowed)
			require.Equal(t, tc.reason, tc.got.Reason)
			assert.Equal(t, tc.policyName, tc.got.PolicyName)
			assert.Equal(t, tc.denialType, tc.got.DenialType)
			assert.Empty(t, tc.got.PolicyID)
			assert.Zero(t, tc.got.PolicyVersion)
		})
	}
}

func TestShortSessionID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, id, want string }{
		{name: "long id truncated", id: "6a4db3cf-0c1d-4e2f", want: "6a4db3cf…"},
		{name: "nine characters", id: "123456789", want: "12345678…"},
		{name: "exactly eight", id: "12345678", want: "12345678…"},
		{name: "shorter id whole", id: "abc", want: "abc…"},
		{name: "empty", id: "", want: "…"},
		{name: "counts characters not bytes", id: "ééééééééé", want: "éééééééé…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, policy.ShortSessionID(tc.id))
		})
	}
}
