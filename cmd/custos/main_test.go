package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"

	"github.com/custos-dev/custos/eventstore"
)

// binary is the custos command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "custos-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "custos")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(fmt.Sprintf("build custos: %v", err))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var keyPattern = regexp.MustCompile(`^cst_[0-9A-Za-z]{49}$`)

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	return runCommand(t, cmd)
}

// runCommand runs cmd to its end and returns what it printed and its exit
// code (-1 when a signal ended it); an error other than a non-zero exit
// fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func TestInitPrintsOnlyTheKeyAndRefusesAnInitialisedFolder(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, nil, "init", "--data", dir)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, keyPattern, strings.TrimSpace(r.stdout))
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"), "stdout holds the key alone")

	again := runCLI(t, nil, "init", "--data", dir)
	assert.Equal(t, 1, again.code)
	assert.Empty(t, again.stdout)
	assert.Contains(t, again.stderr, "already initialised")

	v := runCLI(t, nil, "verify", "--data", dir)
	require.Equal(t, 0, v.code, v.stderr)
	var report map[string]any
	require.NoError(t, json.Unmarshal([]byte(v.stdout), &report))
	assert.Equal(t, true, report["valid"])
	assert.Equal(t, float64(1), report["total"], "init appended exactly one event, a second init none")
}

func TestDataFolderFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, []string{"CUSTOS_DATA=" + dir}, "init")
	require.Equal(t, 0, r.code, r.stderr)
	exists, err := eventstore.Exists(nil, dir)
	require.NoError(t, err)
	assert.True(t, exists)
}

func TestVerifyExitCodes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	require.Equal(t, 0, runCLI(t, nil, "init", "--data", dir).code)
	require.Equal(t, 0, runCLI(t, nil, "admin-key", "reset", "--data", dir).code)

	// Change one byte of the first record's payload, as an attacker with
	// disk access would.
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	key := eventstore.RecordKey(eventstore.DefaultChain, 1)
	v, closer, err := db.Get(key)
	require.NoError(t, err)
	tampered := append([]byte(nil), v...)
	require.NoError(t, closer.Close())
	view, err := eventstore.ParseStored(tampered)
	require.NoError(t, err)
	idx := bytes.Index(tampered, view.Payload)
	tampered[idx+2] ^= 0x01
	require.NoError(t, db.Set(key, tampered, pebble.Sync))
	require.NoError(t, db.Close())

	broken := runCLI(t, nil, "verify", "--data", dir)
	require.Equal(t, 1, broken.code, broken.stderr)
	var report struct {
		Valid    bool    `json:"valid"`
		BrokenAt *string `json:"broken_at"`
		Detail   struct {
			Seq  uint64 `json:"seq"`
			Kind string `json:"kind"`
		} `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(broken.stdout), &report))
	assert.False(t, report.Valid)
	require.NotNil(t, report.BrokenAt)
	assert.Equal(t, string(view.ID), *report.BrokenAt)
	assert.Equal(t, uint64(1), report.Detail.Seq)
	assert.Equal(t, "hash_mismatch", report.Detail.Kind)

	missing := runCLI(t, nil, "verify", "--data", filepath.Join(t.TempDir(), "nothing-here"))
	assert.Equal(t, 2, missing.code)
	assert.Empty(t, missing.stdout)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(missing.stderr), "\n")+1, "one-line reason: %q", missing.stderr)
}

func TestAdminKeyResetNeedsAStore(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "admin-key", "reset", "--data", filepath.Join(t.TempDir(), "none"))
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "no custos store")
}

// server is a running `custos serve` process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stdout *eventstoretest.Buffer
	logs   *eventstoretest.Buffer
	// logsDone is closed when the server's stderr reached EOF.
	logsDone chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func startServer(t *testing.T, dir string) *server {
	t.Helper()
	return startServerWith(t, dir, nil)
}

func (s *server) do(t *testing.T, method, path, key string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+s.addr+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	<-s.logsDone
	require.NoError(t, s.cmd.Wait(), "graceful shutdown exits 0; logs: %s", s.logs.String())
}

func TestServeBootstrapsServesAndShutsDownGracefully(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	out := srv.stdout.String()
	require.Contains(t, out, "custos: first admin key")
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(out)
	require.NotEmpty(t, admin)

	code, body := srv.do(t, http.MethodGet, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = srv.do(t, http.MethodGet, "/readyz", "", "")
	assert.Equal(t, http.StatusOK, code)
	code, body = srv.do(t, http.MethodGet, "/v1/keys", "", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.JSONEq(t, `{"detail": "Missing API key."}`, string(body))
	code, body = srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name": "loan-agent-prod", "scope": "evaluate", "expires_days": 30}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body = srv.do(t, http.MethodGet, "/v1/keys", admin, "")
	require.Equal(t, http.StatusOK, code)
	before := string(body)
	srv.stop(t)
	assert.NotContains(t, srv.logs.String(), admin, "the key never reaches the logs")

	// A second start on the same folder prints no key and serves the same state.
	again := startServer(t, dir)
	assert.NotContains(t, again.stdout.String(), "first admin key")
	code, body = again.do(t, http.MethodGet, "/v1/keys", admin, "")
	require.Equal(t, http.StatusOK, code)
	var b1, b2 []map[string]any
	require.NoError(t, json.Unmarshal([]byte(before), &b1))
	require.NoError(t, json.Unmarshal(body, &b2))
	for _, list := range [][]map[string]any{b1, b2} {
		for _, k := range list {
			delete(k, "last_used_at") // the second session's requests record use
		}
	}
	assert.Equal(t, b1, b2)
	again.stop(t)

	v := runCLI(t, nil, "verify", "--data", dir)
	assert.Equal(t, 0, v.code, v.stdout+v.stderr)
}

// TestSecondServeOnAFolderSaysItIsHeld: while one `custos serve` runs, a
// second one on the same folder fails at once and says that another custos
// process holds the folder, instead of Pebble's bare lock error.
func TestSecondServeOnAFolderSaysItIsHeld(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	out := srv.stdout.String()
	assert.Contains(t, out, "Copy it now: this is the only time it is shown")
	assert.Regexp(t, `expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(90 days\)`, out)

	second := runCLI(t, nil, "serve", "--data", dir, "--addr", freeAddr(t))
	assert.NotEqual(t, 0, second.code)
	assert.Contains(t, second.stderr, "another custos process holds "+dir+" (stop it first, or use its HTTP API)")
	assert.NotContains(t, second.stdout, "first admin key")
	srv.stop(t)
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(t, nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Regexp(t, `^custos \S+\ncommit:        \S+( \(modified\))?\ngo:            go1\.\d+\S*\nhash versions: \[1\]\n$`, r.stdout, args)
	}
}

// signerOf loads the checkpoint signing key that init or serve created
// beside the data folder dir, for tests that append to a store directly.
func signerOf(t *testing.T, dir string) *checkpoint.Signer {
	t.Helper()
	b, err := os.ReadFile(signingKeyOf(dir))
	require.NoError(t, err)
	s, err := checkpoint.NewSigner(string(b))
	require.NoError(t, err)
	return s
}

// signingKeyOf is the default signing key path of the data folder dir.
func signingKeyOf(dir string) string { return filepath.Clean(dir) + ".signing-key" }
