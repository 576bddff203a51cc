package loadtest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/cmd/internal/loadtest"
)

func TestBaselineAnswersFromItsTable(t *testing.T) {
	t.Parallel()
	b, err := loadtest.StartBaseline()
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	assert.True(t, strings.HasPrefix(b.URL(), "http://127.0.0.1:"))

	ask := func(role, source string) (int, map[string]any) {
		body := `{"agent_role":"` + role + `","agent_id":"a","user_id":"u","source_id":"` + source +
			`","sensitivity_level":"low","session_id":"s-1"}`
		resp, err := http.Post(b.URL()+"/v1/context/evaluate", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, m := ask("loadtest_lending", "crm")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ALLOW", m["decision"])
	assert.Equal(t, "s-1", m["session_id"])
	_, m = ask("loadtest_lending", "hr_records")
	assert.Equal(t, "DENY", m["decision"])

	resp, err := http.Post(b.URL()+"/v1/context/evaluate", "application/json", strings.NewReader("{"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close is safe twice")
}
