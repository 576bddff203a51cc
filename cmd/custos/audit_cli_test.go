package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExportVerifyAndReplayOffline(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)
	beforeKeys := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	code, body := srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name":"reader","scope":"read"}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body = srv.do(t, http.MethodPost, "/v1/policies", admin, `{"name":"p","agent_role":"r","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	srv.stop(t)

	out := filepath.Join(t.TempDir(), "chain.jsonl")
	r := runCLI(t, nil, "export", "--data", dir, "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr, "no progress bar when stderr is not a terminal")
	v := runCLI(t, nil, "verify", "--export", out)
	require.Equal(t, 0, v.code, v.stdout+v.stderr)

	// One changed character in the policy's name: broken at that event.
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	last := lines[len(lines)-1]
	var line map[string]any
	require.NoError(t, json.Unmarshal(last, &line))
	line["actor"] = "key_01ZZZZZZZZZZZZZZZZZZZZZZZZ"
	lines[len(lines)-1], _ = json.Marshal(line)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	require.NoError(t, os.WriteFile(tampered, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600))
	v = runCLI(t, nil, "verify", "--export", tampered)
	require.Equal(t, 1, v.code, v.stdout+v.stderr)
	var report map[string]any
	require.NoError(t, json.Unmarshal([]byte(v.stdout), &report))
	assert.Equal(t, line["id"], report["broken_at"])

	missing := runCLI(t, nil, "verify", "--export", filepath.Join(t.TempDir(), "none.jsonl"))
	assert.Equal(t, 2, missing.code)

	// Replay: before the key was created, and now.
	type tables struct {
		Keys     []map[string]any `json:"keys"`
		Policies []map[string]any `json:"policies"`
	}
	var then, now tables
	r = runCLI(t, nil, "replay", "--data", dir, "--at", beforeKeys.Format(time.RFC3339Nano))
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &then))
	assert.Len(t, then.Keys, 1, "only the bootstrap key")
	assert.Empty(t, then.Policies)
	r = runCLI(t, nil, "replay", "--data", dir, "--at", time.Now().UTC().Add(time.Second).Format(time.RFC3339))
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &now))
	assert.Len(t, now.Keys, 2)
	assert.Len(t, now.Policies, 1)
	r = runCLI(t, nil, "replay", "--data", dir, "--at", "tuesday")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--at must be an RFC 3339 time")
}
