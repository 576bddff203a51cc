package main_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unpack extracts the tar.gz at archive into dir.
func unpack(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		path := filepath.Join(dir, filepath.Clean(h.Name))
		require.True(t, strings.HasPrefix(path, dir+string(filepath.Separator)), "entry %q escapes", h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(path, 0o700))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			require.NoError(t, err)
			_, err = io.Copy(out, tr)
			require.NoError(t, err)
			require.NoError(t, out.Close())
		}
	}
}

// TestUpgradeAFolderTheReleaseBeforeTenantsWrote opens a data folder that
// the release before tenants wrote (testdata/release-db923da): it becomes
// tenant default with every key, policy, agent, session and record intact,
// its keys keep working, a superadmin key is printed once, and the folder
// verifies online and offline.
func TestUpgradeAFolderTheReleaseBeforeTenantsWrote(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fixture := filepath.Join("testdata", "release-db923da")
	unpack(t, filepath.Join(fixture, "folder.tar.gz"), root)
	dir := filepath.Join(root, "data")
	var plain map[string]string
	raw, err := os.ReadFile(filepath.Join(fixture, "keys.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &plain))
	before, err := os.ReadFile(filepath.Join(fixture, "export.jsonl"))
	require.NoError(t, err)
	beforeLines := strings.Split(strings.TrimSuffix(string(before), "\n"), "\n")

	srv := startServer(t, dir)
	out := srv.stdout.String()
	assert.NotContains(t, out, "first admin key", "the folder has its admin key")
	super := superadminKeyOf(t, srv)
	assert.Equal(t, 1, strings.Count(out, "deployment superadmin key"))

	code, body := srv.do(t, http.MethodGet, "/v1/tenants", super, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var list struct {
		Tenants []struct {
			TenantID string `json:"tenant_id"`
			Status   string `json:"status"`
		} `json:"tenants"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Tenants, 1)
	assert.Equal(t, "default", list.Tenants[0].TenantID)
	assert.Equal(t, "active", list.Tenants[0].Status)

	// The old keys work as before; the revoked one stays revoked.
	code, body = srv.do(t, http.MethodGet, "/v1/keys", plain["read"], "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	for _, name := range []string{"bootstrap-admin", "reader", "agent", "old"} {
		assert.Contains(t, string(body), `"name":"`+name+`"`)
	}
	code, _ = srv.do(t, http.MethodGet, "/v1/keys", plain["revoked"], "")
	assert.Equal(t, http.StatusForbidden, code)
	code, body = srv.do(t, http.MethodGet, "/v1/policies", plain["admin"], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"name":"loans"`)
	code, body = srv.do(t, http.MethodGet, "/v1/agents/loan-agent", plain["admin"], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"status":"approved"`)
	code, body = srv.do(t, http.MethodGet, "/v1/audit/sessions/sess-1", plain["read"], "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), `"total_events":3`)
	// A new session: sess-1 (600 minutes) has expired since the folder
	// was written.
	code, body = srv.do(t, http.MethodPost, "/v1/context/evaluate", plain["evaluate"],
		`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":"sess-after-upgrade"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), `"decision":"ALLOW"`)

	// Every record the old release wrote is there, byte for byte, with the
	// upgrade's own records after it.
	code, body = srv.do(t, http.MethodGet, "/v1/audit/export", plain["read"], "")
	require.Equal(t, http.StatusOK, code)
	var after []string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		after = append(after, sc.Text())
	}
	require.Greater(t, len(after), len(beforeLines))
	require.Equal(t, beforeLines, after[:len(beforeLines)])
	assert.Contains(t, after[len(beforeLines)], `"type":"tenant.created"`)
	assert.Contains(t, after[len(beforeLines)], `"actor":"system:upgrade"`)
	code, body = srv.do(t, http.MethodGet, "/v1/audit/verify", plain["read"], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"valid":true`)
	srv.stop(t)

	// A second start prints no key; offline, both chains verify.
	again := startServer(t, dir)
	assert.NotContains(t, again.stdout.String(), "cst_")
	again.stop(t)
	for _, chain := range []string{"default", "system"} {
		r := runCLI(t, nil, "verify", "--data", dir, "--chain", chain)
		require.Equal(t, 0, r.code, "chain %s: %s %s", chain, r.stdout, r.stderr)
	}
	// superadmin-key reset mints another, offline.
	r := runCLI(t, nil, "superadmin-key", "reset", "--data", dir)
	require.Equal(t, 0, r.code, r.stderr)
	third := startServer(t, dir)
	code, _ = third.do(t, http.MethodGet, "/v1/tenants", strings.TrimSpace(r.stdout), "")
	assert.Equal(t, http.StatusOK, code)
}
