package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

// TestPolicyJSONServesListsAsGiven: the API answers policy.Policy with its
// own tags; every list given empty comes back as [], every absent list
// stays absent.
func TestPolicyJSONServesListsAsGiven(t *testing.T) {
	t.Parallel()
	lists := []string{
		"regulations", "permitted_agent_ids", "allowed_sources", "denied_sources", "allowed_tasks", "denied_tasks",
		"task_bindings", "allowed_actions", "denied_actions", "sensitivity_decay", "require_principal_entitlements",
	}
	t.Run("empty given", func(t *testing.T) {
		t.Parallel()
		in := `{"name":"a","agent_role":"r"`
		for _, f := range lists {
			in += `,"` + f + `":[]`
		}
		in += "}"
		var p policy.Policy
		require.NoError(t, json.Unmarshal([]byte(in), &p))
		out, err := json.Marshal(p)
		require.NoError(t, err)
		for _, f := range lists {
			assert.Contains(t, string(out), `"`+f+`":[]`, f)
		}
	})
	t.Run("absent", func(t *testing.T) {
		t.Parallel()
		out, err := json.Marshal(policy.Policy{Name: "a", AgentRole: "r"})
		require.NoError(t, err)
		assert.JSONEq(t, `{"name":"a","agent_role":"r"}`, string(out))
	})
	t.Run("nested", func(t *testing.T) {
		t.Parallel()
		in := `{"name":"a","agent_role":"r","regulations":[{"id":"x","applicable_rules":[]}],` +
			`"require_principal_entitlements":[{"sources":["s"],"require_any":["g:x"],"require_all":[]}]}`
		var p policy.Policy
		require.NoError(t, json.Unmarshal([]byte(in), &p))
		out, err := json.Marshal(p)
		require.NoError(t, err)
		assert.JSONEq(t, in, string(out))
	})
}
