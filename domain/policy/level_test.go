package policy_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want policy.Level
		ok   bool
	}{
		{"low", policy.LevelLow, true},
		{"medium", policy.LevelMedium, true},
		{"high", policy.LevelHigh, true},
		{"critical", policy.LevelCritical, true},
		{"High", "", false},
		{"", "", false},
		{"secret", "", false},
	} {
		t.Run("in="+tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := policy.ParseLevel(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, policy.ErrUnknownLevel)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, got.String())
		})
	}
}

func TestLevelCompare(t *testing.T) {
	t.Parallel()
	order := []policy.Level{policy.LevelLow, policy.LevelMedium, policy.LevelHigh, policy.LevelCritical, "unknown"}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			assert.Equal(t, want, a.Compare(b), "%s vs %s", a, b)
		}
	}
}

func TestParseAction(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"read", "write", "delete"} {
		a, err := policy.ParseAction(in)
		require.NoError(t, err)
		require.True(t, a.Valid())
		require.Equal(t, in, a.String())
	}
	for _, in := range []string{"", "Read", "execute"} {
		_, err := policy.ParseAction(in)
		require.True(t, errors.Is(err, policy.ErrUnknownAction), in)
	}
}

func TestTextMarshaling(t *testing.T) {
	t.Parallel()
	var req policy.Request
	require.NoError(t, json.Unmarshal([]byte(`{"sensitivity_level":"bogus","action":"write"}`), &req))
	require.Equal(t, policy.Level("bogus"), req.Sensitivity, "decoding is lenient; validity is checked later")
	require.False(t, req.Sensitivity.Valid())
	require.Equal(t, policy.ActionWrite, req.Action)

	b, err := json.Marshal(struct {
		L policy.Level  `json:"l"`
		A policy.Action `json:"a"`
	}{policy.LevelCritical, policy.ActionDelete})
	require.NoError(t, err)
	require.JSONEq(t, `{"l":"critical","a":"delete"}`, string(b))
}

func TestPolicyJSONKeepsAbsentAndEmptyApart(t *testing.T) {
	t.Parallel()
	in := `{"name":"n","agent_role":"r","allowed_tasks":[],"allowed_actions":null,
		"task_bindings":[{"task":"t","permitted_sources":[],"actions":[]}],"max_sensitivity":"low",
		"regulations":[{"id":"gdpr","name":"GDPR","applicable_rules":[{"rule":"art 5","how_enforced":"ceiling"}]}]}`
	var p policy.Policy
	require.NoError(t, json.Unmarshal([]byte(in), &p))
	require.NotNil(t, p.AllowedTasks)
	require.Empty(t, p.AllowedTasks)
	require.Nil(t, p.AllowedActions)
	require.Nil(t, p.PermittedAgentIDs)
	require.NotNil(t, p.TaskBindings[0].Actions)
	require.Equal(t, policy.LevelLow, *p.MaxSensitivity)
	require.Nil(t, p.RequireTaskForSensitivity)
	require.Equal(t, "ceiling", p.Regulations[0].ApplicableRules[0].HowEnforced)

	out, err := json.Marshal(p)
	require.NoError(t, err)
	var back policy.Policy
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, p, back)
	require.NotContains(t, string(out), "allowed_actions")
	require.Contains(t, string(out), `"allowed_tasks":[]`)
}

func TestClone(t *testing.T) {
	t.Parallel()
	p := fullPolicy()
	q := p.Clone()
	require.Equal(t, p, q)
	q.TaskBindings[0].PermittedSources[0] = "x"
	q.RequirePrincipalEntitlements[0].RequireAny[0] = "x"
	*q.MaxSensitivity = policy.LevelLow
	q.Regulations[0].ApplicableRules[0].Rule = "x"
	require.Equal(t, fullPolicy(), p)
}
