package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTenantCheckpointKeys: a tenant created over HTTP gets its own
// checkpoint verifier key, which GET /v1/audit/vkey serves to its keys and
// `custos vkey --tenant` prints offline from the signing key; its
// checkpoint verifies with that key (verify --checkpoint derives it when
// no --vkey is given) and not with the deployment key; and serve starts
// again on the folder, checking the tenant's chain with the tenant's key.
func TestTenantCheckpointKeys(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	deploymentVkey := filepath.Join(root, "vkey")
	requireCode(t, 0, runCLI(t, nil, "init", "--data", dir, "--vkey-out", deploymentVkey, "--origin", "custos.test/cli"))
	super := strings.TrimSpace(requireCode(t, 0, runCLI(t, nil, "superadmin-key", "reset", "--data", dir)).stdout)

	srv := startServer(t, dir)
	code, body := srv.do(t, http.MethodPost, "/v1/tenants", super, `{"tenant_id":"acme"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct {
		AdminKey struct{ Key string } `json:"admin_key"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	code, vkey := srv.do(t, http.MethodGet, "/v1/audit/vkey", created.AdminKey.Key, "")
	require.Equal(t, http.StatusOK, code, "%s", vkey)
	code, cp := srv.do(t, http.MethodGet, "/v1/audit/checkpoint", created.AdminKey.Key, "")
	require.Equal(t, http.StatusOK, code, "%s", cp)
	srv.stop(t)
	assert.True(t, strings.HasPrefix(string(vkey), "custos.test/cli/acme+"), "%s", vkey)
	cpFile := filepath.Join(root, "acme.checkpoint")
	require.NoError(t, os.WriteFile(cpFile, cp, 0o644))

	offline := requireCode(t, 0, runCLI(t, nil, "vkey", "--data", dir, "--tenant", "acme"))
	assert.Equal(t, string(vkey), offline.stdout, "custos vkey derives what the server serves")
	deployment, err := os.ReadFile(deploymentVkey)
	require.NoError(t, err)
	assert.Equal(t, string(deployment), requireCode(t, 0, runCLI(t, nil, "vkey", "--data", dir)).stdout, "tenant default: the key init printed")
	assert.NotEqual(t, string(deployment), string(vkey))
	bad := requireCode(t, 2, runCLI(t, nil, "vkey", "--data", dir, "--tenant", "system"))
	assert.Contains(t, bad.stderr, "reserved")

	ok := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir, "--chain", "acme", "--checkpoint", cpFile)))
	assert.Equal(t, true, ok["checkpoint"].(map[string]any)["contained"])
	assert.Equal(t, "custos.test/cli/acme", ok["checkpoint"].(map[string]any)["origin"])
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir, "--chain", "acme", "--checkpoint", cpFile, "--vkey", strings.TrimSpace(string(vkey))))
	wrong := requireCode(t, 2, runCLI(t, nil, "verify", "--data", dir, "--chain", "acme", "--checkpoint", cpFile, "--vkey", deploymentVkey))
	assert.Contains(t, wrong.stderr, "no valid signature")
	noKey := requireCode(t, 2, runCLI(t, nil, "verify", "--data", dir, "--chain", "acme", "--checkpoint", cpFile, "--signing-key", filepath.Join(root, "missing")))
	assert.Contains(t, noKey.stderr, "--checkpoint needs --vkey")

	again := startServer(t, dir)
	assert.Contains(t, again.logs.String(), `"chain":"acme"`, "the start check covers the tenant's chain")
	again.stop(t)
}

// TestSuperadminExportsATenant: a superadmin exports a tenant's chain with
// its checkpoint (custos audit export --tenant), and the pair verifies
// offline against the tenant's verifier key served to the superadmin;
// the export holds that tenant's records alone. An unknown tenant is a 404
// and leaves no file behind.
func TestSuperadminExportsATenant(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	requireCode(t, 0, runCLI(t, nil, "init", "--data", dir))
	super := strings.TrimSpace(requireCode(t, 0, runCLI(t, nil, "superadmin-key", "reset", "--data", dir)).stdout)
	srv := startServer(t, dir)
	code, body := srv.do(t, http.MethodPost, "/v1/tenants", super, `{"tenant_id":"acme"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	code, vkey := srv.do(t, http.MethodGet, "/v1/tenants/acme/audit/vkey", super, "")
	require.Equal(t, http.StatusOK, code, "%s", vkey)

	env := []string{"CUSTOS_API_KEY=" + super}
	out := filepath.Join(root, "acme.jsonl")
	requireCode(t, 0, runCLI(t, env, "audit", "export", "--server", "http://"+srv.addr, "--tenant", "acme", "--out", out))
	export, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(export)), "\n") {
		assert.Contains(t, line, `"chain":"acme"`)
	}
	cp, err := os.ReadFile(out + ".checkpoint")
	require.NoError(t, err)
	assert.Contains(t, strings.SplitN(string(cp), "\n", 2)[0], "/acme", "the checkpoint's origin names the tenant: %s", cp)
	requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint", "--vkey", strings.TrimSpace(string(vkey))))

	missing := filepath.Join(root, "nope.jsonl")
	r := requireCode(t, 2, runCLI(t, env, "audit", "export", "--server", "http://"+srv.addr, "--tenant", "nope", "--out", missing))
	assert.Contains(t, r.stderr, "404")
	_, err = os.Stat(missing)
	assert.ErrorIs(t, err, os.ErrNotExist, "no file is left behind")
	srv.stop(t)
}
