package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminKeyOf returns the first admin key a new server printed.
func adminKeyOf(t *testing.T, s *server) string {
	t.Helper()
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(s.stdout.String())
	require.NotEmpty(t, admin, "server printed no admin key")
	return admin
}

// superadminKeyOf returns the superadmin key s printed at its first start.
func superadminKeyOf(t *testing.T, s *server) string {
	t.Helper()
	m := regexp.MustCompile(`deployment superadmin key =+\n(cst_[0-9A-Za-z]{49})`).FindStringSubmatch(s.stdout.String())
	require.NotNil(t, m, "server printed no superadmin key")
	return m[1]
}

// createTenant creates tenant id on s with the superadmin key super and
// returns the tenant's first admin key.
func createTenant(t *testing.T, s *server, super, id string) string {
	t.Helper()
	code, body := s.do(t, http.MethodPost, "/v1/tenants", super, `{"tenant_id":"`+id+`"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct {
		AdminKey struct {
			Key string `json:"key"`
		} `json:"admin_key"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	return created.AdminKey.Key
}

// clientEnv points client commands at s with key.
func clientEnv(s *server, key string) []string {
	return []string{"CUSTOS_SERVER=http://" + s.addr, "CUSTOS_API_KEY=" + key}
}

// requireCode requires exit code want and returns r.
func requireCode(t *testing.T, want int, r result) result {
	t.Helper()
	require.Equal(t, want, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	return r
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), "stdout: %s", r.stdout)
	return v
}

const bankPolicies = `industry: banking
policies:
  - name: lending-policy
    agent_role: loan_officer
    allowed_sources: [crm, credit_bureau]
    max_sensitivity: high
  - name: kyc-policy
    policy_id: pol-kyc
    agent_role: kyc_analyst
    allowed_sources: [crm]
`

func TestClientCommands(t *testing.T) {
	t.Parallel()
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	admin := adminKeyOf(t, srv)
	env := clientEnv(srv, admin)
	cli := func(args ...string) result { return runCLI(t, env, args...) }

	t.Run("keys", func(t *testing.T) {
		type key struct {
			KeyID       string  `json:"key_id"`
			Key         string  `json:"key"`
			Name        string  `json:"name"`
			IsActive    bool    `json:"is_active"`
			RotatedFrom string  `json:"rotated_from"`
			RevokedAt   *string `json:"revoked_at"`
		}
		created := decodeJSON[key](t, requireCode(t, 0, cli("keys", "create", "--name", "reporting", "--scope", "read", "--expires-days", "30", "-o", "json")))
		assert.Regexp(t, keyPattern, created.Key)
		assert.Equal(t, "reporting", created.Name)

		list := requireCode(t, 0, cli("keys", "list"))
		assert.Regexp(t, `(?m)^KEY_ID\s+NAME\s+SCOPE`, list.stdout)
		assert.Regexp(t, `(?m)^`+created.KeyID+`\s+reporting\s+read\s`, list.stdout)
		assert.NotContains(t, list.stdout, created.Key, "never the key itself")

		got := decodeJSON[key](t, requireCode(t, 0, cli("keys", "get", created.KeyID, "-o", "json")))
		assert.Equal(t, created.KeyID, got.KeyID)
		assert.True(t, got.IsActive)
		table := requireCode(t, 0, cli("keys", "get", created.KeyID))
		assert.Regexp(t, `(?m)^name:\s+reporting$`, table.stdout)

		missing := requireCode(t, 1, cli("keys", "get", "key_01ZZZZZZZZZZZZZZZZZZZZZZZZ"))
		assert.Empty(t, missing.stdout)
		assert.Contains(t, missing.stderr, "404 Not Found: Key not found.")

		rotated := decodeJSON[key](t, requireCode(t, 0, cli("keys", "rotate", created.KeyID, "--grace", "1m", "-o", "json")))
		assert.Equal(t, created.KeyID, rotated.RotatedFrom)
		assert.Regexp(t, keyPattern, rotated.Key)

		// The reader key works for reads, not for admin commands: 403 is exit 2.
		reader := clientEnv(srv, rotated.Key)
		requireCode(t, 0, runCLI(t, reader, "keys", "list"))
		denied := requireCode(t, 2, runCLI(t, reader, "keys", "create", "--name", "x", "--scope", "read"))
		assert.Contains(t, denied.stderr, "403 Forbidden: Insufficient scope: POST /v1/keys requires admin.")

		revoked := decodeJSON[key](t, requireCode(t, 0, cli("keys", "revoke", rotated.KeyID, "-o", "json")))
		assert.NotNil(t, revoked.RevokedAt)
		again := requireCode(t, 2, cli("keys", "revoke", rotated.KeyID))
		assert.Empty(t, again.stdout)
		assert.Equal(t, "custos: 409 Conflict: Key is already revoked.\n", again.stderr)

		invalid := requireCode(t, 2, cli("keys", "create", "--name", "bad", "--scope", "root"))
		assert.Contains(t, invalid.stderr, "422 Unprocessable Entity: Invalid request: scope")

		// Dynamic completion lists key ids from the server.
		comp := requireCode(t, 0, cli("__complete", "keys", "get", ""))
		assert.Contains(t, comp.stdout, created.KeyID+"\treporting (read)")
	})

	t.Run("policies", func(t *testing.T) {
		dir := t.TempDir()
		yamlFile := filepath.Join(dir, "bank.yaml")
		require.NoError(t, os.WriteFile(yamlFile, []byte(bankPolicies), 0o600))
		applied := requireCode(t, 0, cli("policies", "apply", "-f", yamlFile))
		assert.Regexp(t, `(?m)^created\s+lending-policy\s+pol_\w+\s+1\s`, applied.stdout)
		assert.Regexp(t, `(?m)^created\s+kyc-policy\s+pol-kyc\s+1\s`, applied.stdout)

		list := requireCode(t, 0, cli("policies", "list"))
		assert.Regexp(t, `(?m)^lending-policy\s+pol_\w+\s+loan_officer\s+1\s`, list.stdout)
		assert.Regexp(t, `(?m)^kyc-policy\s+pol-kyc\s+kyc_analyst\s+1\s`, list.stdout)

		// Applying the same file again changes nothing.
		type applyRow struct {
			Action, Name, PolicyID string
			Version                int
		}
		same := decodeJSON[[]applyRow](t, requireCode(t, 0, cli("policies", "apply", "-f", yamlFile, "-o", "json")))
		require.Len(t, same, 2)
		for _, r := range same {
			assert.Equal(t, "unchanged", r.Action, r.Name)
		}

		// A JSON file in the same format updates by name.
		jsonFile := filepath.Join(dir, "lending.json")
		require.NoError(t, os.WriteFile(jsonFile, []byte(
			`{"policies": [{"name": "lending-policy", "agent_role": "loan_officer", "allowed_sources": ["crm"]}]}`), 0o600))
		updated := decodeJSON[[]applyRow](t, requireCode(t, 0, cli("policies", "apply", "-f", jsonFile, "-o", "json")))
		require.Len(t, updated, 1)
		assert.Equal(t, "updated", updated[0].Action)
		assert.Equal(t, 2, updated[0].Version)
		assert.Equal(t, same[0].PolicyID, updated[0].PolicyID)

		got := decodeJSON[map[string]any](t, requireCode(t, 0, cli("policies", "get", "pol-kyc", "-o", "json")))
		assert.Equal(t, "kyc-policy", got["name"])
		requireCode(t, 1, cli("policies", "get", "pol-nope"))

		invalid := filepath.Join(dir, "invalid.yaml")
		require.NoError(t, os.WriteFile(invalid, []byte("policies:\n  - name: no-role\n"), 0o600))
		bad := requireCode(t, 2, cli("policies", "apply", "-f", invalid))
		assert.Contains(t, bad.stderr, "policies[0].agent_role: required")

		requireCode(t, 0, cli("policies", "delete", "pol-kyc"))
		requireCode(t, 2, cli("policies", "delete", "pol-kyc"))
		assert.NotContains(t, requireCode(t, 0, cli("policies", "list")).stdout, "kyc-policy")
		// validate still works offline, under the same parent.
		requireCode(t, 0, runCLI(t, nil, "policies", "validate", yamlFile))
	})

	t.Run("agents", func(t *testing.T) {
		type agent struct {
			AgentID     string `json:"agent_id"`
			Status      string `json:"status"`
			Owner       string `json:"owner"`
			DisplayName string `json:"display_name"`
		}
		a := decodeJSON[agent](t, requireCode(t, 0, cli("agents", "register", "--id", "loan-agent", "--role", "loan_officer",
			"--owner", "ana", "--framework", "langgraph", "-o", "json")))
		assert.Equal(t, "draft", a.Status)

		approved := requireCode(t, 0, cli("agents", "approve", "loan-agent"))
		assert.Regexp(t, `(?m)^status:\s+approved$`, approved.stdout)
		conflict := requireCode(t, 2, cli("agents", "approve", "loan-agent"))
		assert.Contains(t, conflict.stderr, "409 Conflict")

		list := requireCode(t, 0, cli("agents", "list", "--status", "approved"))
		assert.Regexp(t, `(?m)^loan-agent\s+loan_officer\s+approved\s+ana\s+langgraph`, list.stdout)
		none := requireCode(t, 0, cli("agents", "list", "--framework", "crewai", "-o", "json"))
		assert.JSONEq(t, `[]`, none.stdout)

		updated := decodeJSON[agent](t, requireCode(t, 0, cli("agents", "update", "loan-agent", "--display-name", "Loan", "-o", "json")))
		assert.Equal(t, "Loan", updated.DisplayName)
		assert.Equal(t, "ana", updated.Owner)

		requireCode(t, 0, cli("agents", "suspend", "loan-agent"))
		got := decodeJSON[agent](t, requireCode(t, 0, cli("agents", "get", "loan-agent", "-o", "json")))
		assert.Equal(t, "suspended", got.Status)
		requireCode(t, 0, cli("agents", "retire", "loan-agent"))
		requireCode(t, 1, cli("agents", "get", "ghost"))
	})

	// Runs after policies: lending-policy allows loan_officer to read crm.
	t.Run("audit", func(t *testing.T) {
		requireCode(t, 0, cli("agents", "register", "--id", "audit-agent", "--role", "loan_officer"))
		requireCode(t, 0, cli("agents", "approve", "audit-agent"))
		code, body := srv.do(t, http.MethodPost, "/v1/context/evaluate", admin,
			`{"agent_role":"loan_officer","agent_id":"audit-agent","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":"cli-session"}`)
		require.Equal(t, http.StatusOK, code, string(body))

		ok := requireCode(t, 0, cli("audit", "verify"))
		assert.Regexp(t, `(?m)^valid:\s+yes$`, ok.stdout)
		report := decodeJSON[map[string]any](t, requireCode(t, 0, cli("audit", "verify", "-o", "json")))
		assert.Equal(t, true, report["valid"])

		trail := requireCode(t, 0, cli("audit", "session", "cli-session"))
		assert.Regexp(t, `(?m)^\d+\s+\S+\s+ALLOW\s+crm\s+read\s+-\s+lending-policy\s+Access granted$`, trail.stdout)
		requireCode(t, 1, cli("audit", "session", "no-such-session"))
	})
}

func TestClientCommandErrors(t *testing.T) {
	t.Parallel()
	// No key: exit 2 before any request; the key is never a flag.
	r := requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY="}, "keys", "list", "--server", "http://127.0.0.1:1"))
	assert.Contains(t, r.stderr, "CUSTOS_API_KEY is not set")
	r = requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY=x"}, "keys", "list", "--api-key", "x"))
	assert.Contains(t, r.stderr, "unknown flag: --api-key")

	// Unreachable server: exit 2, one line on stderr.
	r = requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY=x", "CUSTOS_SERVER=http://127.0.0.1:1"}, "keys", "list"))
	assert.Contains(t, r.stderr, "cannot reach the custos server at http://127.0.0.1:1")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	// --server beats CUSTOS_SERVER.
	r = requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY=x", "CUSTOS_SERVER=http://127.0.0.1:1"}, "keys", "list", "--server", "http://127.0.0.1:2"))
	assert.Contains(t, r.stderr, "http://127.0.0.1:2")

	r = requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY=x"}, "keys", "list", "-o", "yaml"))
	assert.Contains(t, r.stderr, `-o "yaml"`)
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := requireCode(t, 0, runCLI(t, nil, "completion", shell))
		assert.Contains(t, r.stdout, "custos", shell)
	}
	assert.Contains(t, runCLI(t, nil, "completion", "bash").stdout, "bash completion V2 for custos")
	r := requireCode(t, 0, runCLI(t, nil, "__complete", "keys", "create", "--scope", ""))
	assert.True(t, strings.HasPrefix(r.stdout, "admin\nread\nevaluate\n:4\n"), r.stdout)
}
