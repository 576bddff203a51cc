package decision_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/decision"
)

// TestPolicyResolutionIsAnOptionalField checks that records written before
// policy_resolution existed still decode (with it empty), and that a
// decision without a resolution encodes exactly as before.
func TestPolicyResolutionIsAnOptionalField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, payload, want string
	}{
		{"old record", `{"request":{"agent_role":"r","agent_id":"a","user_id":"u","source_id":"s","sensitivity_level":"low","session_id":"x","action":"read"},"decision":"ALLOW","reason":"Access granted","policy_name":"p","policy_id":"pol_1","policy_version":2,"evaluated_role":"r","key_id":"key_1","evaluated_at":"2030-05-06T09:00:00Z"}`, ""},
		{"bound", `{"request":{"agent_role":"r","agent_id":"a","user_id":"u","source_id":"s","sensitivity_level":"low","session_id":"x","action":"read"},"decision":"ALLOW","reason":"Access granted","policy_name":"p","policy_id":"pol_1","policy_version":2,"policy_resolution":"bound","evaluated_role":"r","key_id":"key_1","evaluated_at":"2030-05-06T09:00:00Z"}`, "bound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := decision.Decode(decision.TypeMade, []byte(tc.payload))
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.PolicyResolution)
			again, err := json.Marshal(m)
			require.NoError(t, err)
			assert.JSONEq(t, tc.payload, string(again))
			if tc.want == "" {
				assert.NotContains(t, string(again), "policy_resolution")
			}
		})
	}
}
