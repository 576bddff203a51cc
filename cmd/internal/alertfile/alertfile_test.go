package alertfile_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/cmd/internal/alertfile"
	"github.com/custos-dev/custos/domain/alerts"
)

func TestLoadGoodFile(t *testing.T) {
	t.Parallel()
	f, err := alertfile.Load("testdata/good.yaml")
	require.NoError(t, err)
	require.Len(t, f.Rules, 4)
	assert.Equal(t, alerts.Duration(5*time.Minute), f.Rules[0].Window)
	assert.Equal(t, []int{14, 1}, f.Rules[1].Days)
	assert.Equal(t, []alertfile.Webhook{{URL: "https://hooks.example.com/custos", SecretEnv: "CUSTOS_ALERTS_SECRET"}}, f.Webhooks)
}

func TestEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	_, err := alertfile.Load("testdata/mistakes.yaml")
	require.Error(t, err)
	var lines []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		lines = append(lines, e.Error())
	}
	assert.Equal(t, []string{
		`testdata/mistakes.yaml:2: rules[0].threshold: must be at least 1`,
		`testdata/mistakes.yaml:4: rules[0].group_by: must be one of role, agent, source, denial_type`,
		`testdata/mistakes.yaml:5: rules[0].window: "soon" is not a duration; write Go duration text such as 5m or 1h`,
		`testdata/mistakes.yaml:8: rules[1].days[1]: must be between 1 and 365`,
		`testdata/mistakes.yaml:9: rules[2].rule_id: rule_id "deny-spike" repeats rules[0]`,
		`testdata/mistakes.yaml:12: webhooks[0].url: must be an absolute http or https URL`,
		`testdata/mistakes.yaml:13: webhooks[0].secret_env: must name an environment variable (letters, digits, _)`,
	}, lines)
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "rules:\n  - rule_id: a\n    kind: verify_failed\n    treshold: 3\n", "x.yaml:4: field treshold not found"},
		{"wrong type", "rules:\n  - rule_id: a\n    threshold: many\n", "x.yaml:3: cannot unmarshal"},
		{"syntax", "rules: [\n", "x.yaml"},
		{"empty", "", "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := alertfile.Parse("x.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var p *alertfile.Problem
			require.True(t, errors.As(err, &p))
		})
	}
}
