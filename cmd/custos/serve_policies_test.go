package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

const retailPolicies = `industry: banking
organization: Example Bank
policies:
  - name: retail-advisor
    agent_role: retail_advisor
    allowed_sources: [crm, portfolio]
    max_sensitivity: medium
  - name: kyc-analyst
    agent_role: kyc_analyst
    allowed_sources: [crm, sanctions]
    session_ttl_minutes: 30
`

// recordTypes returns "type actor" of every record in the folder.
func recordTypes(t *testing.T, dir string) []string {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	var types []string
	require.NoError(t, s.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		types = append(types, r.Type+" "+r.Actor)
		return nil
	}))
	return types
}

func TestServePoliciesAppendsOnlyDifferences(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	policies := t.TempDir()
	file := filepath.Join(policies, "retail.yaml")
	require.NoError(t, os.WriteFile(file, []byte(retailPolicies), 0o600))

	startServerWith(t, dir, nil, "--policies", policies).stop(t)
	first := recordTypes(t, dir)
	assert.Equal(t, 2, strings.Count(strings.Join(first, "\n"), "policy.created system:policy-sync"))

	// The same files again: nothing appended.
	startServerWith(t, dir, nil, "--policies", policies).stop(t)
	assert.Equal(t, first, recordTypes(t, dir))

	// One changed policy: exactly one policy.updated.
	changed := strings.Replace(retailPolicies, "session_ttl_minutes: 30", "session_ttl_minutes: 45", 1)
	require.NoError(t, os.WriteFile(file, []byte(changed), 0o600))
	startServerWith(t, dir, nil, "--policies", policies).stop(t)
	after := recordTypes(t, dir)
	require.Len(t, after, len(first)+1)
	assert.Equal(t, "policy.updated system:policy-sync", after[len(after)-1])

	// An invalid file stops the start with every problem, appending nothing.
	bad := strings.Replace(changed, "max_sensitivity: medium", "max_sensitivity: secret", 1)
	bad = strings.Replace(bad, "session_ttl_minutes: 45", "session_ttl_minutes: -1", 1)
	require.NoError(t, os.WriteFile(file, []byte(bad), 0o600))
	r := runCLI(t, nil, "serve", "--data", dir, "--addr", freeAddr(t), "--policies", policies)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "max_sensitivity")
	assert.Contains(t, r.stderr, "session_ttl_minutes")
	assert.Equal(t, after, recordTypes(t, dir))

	v := runCLI(t, nil, "policies", "validate", policies)
	assert.Equal(t, 1, v.code)
	assert.Contains(t, v.stderr, "retail.yaml:7: policies[0].max_sensitivity")
}
