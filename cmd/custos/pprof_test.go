package main_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// startServerWith is startServer with extra environment and arguments.
func startServerWith(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), stdout: &eventstoretest.Buffer{}, logs: &eventstoretest.Buffer{}, logsDone: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve", "--data", dir, "--addr", s.addr}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout = s.stdout
	stderr, err := s.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, s.cmd.Start())
	ready := make(chan struct{})
	go func() {
		defer close(s.logsDone)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "custos serving") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("server did not start: %s", s.logs.String())
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	return s
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestPprofOnlyOnItsOwnListener checks that --pprof (here set through
// CUSTOS_PPROF) serves profiles on --pprof-addr and never on the API port,
// and that /metrics on the API port reflects the store's commits.
func TestPprofOnlyOnItsOwnListener(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	pprofAddr := freeAddr(t)
	srv := startServerWith(t, dir, []string{"CUSTOS_PPROF=true"}, "--pprof-addr", pprofAddr)
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)

	code, body := httpGet(t, "http://"+pprofAddr+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine")
	code, _ = httpGet(t, "http://"+pprofAddr+"/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, code)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		code, _ := srv.do(t, http.MethodGet, path, admin, "")
		assert.Equal(t, http.StatusNotFound, code, "%s on the API port", path)
	}

	code, created := srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name":"reader","scope":"read","expires_days":3}`)
	require.Equal(t, http.StatusCreated, code, "%s", created)
	code, metrics := srv.do(t, http.MethodGet, "/metrics", "", "")
	require.Equal(t, http.StatusOK, code)
	for _, line := range []string{
		`custos_keys{scope="admin",state="active"} 1`,
		`custos_keys_expiring_14d{scope="read"} 1`,
	} {
		assert.Contains(t, string(metrics), line+"\n")
	}
	assert.Regexp(t, `(?m)^custos_chain_head_seq [2-9]$`, string(metrics), "bootstrap, key.created, maybe key.used")
	assert.Regexp(t, `(?m)^custos_fsync_duration_seconds_count [1-9]`, string(metrics), "the store's commits are observed")
	assert.Regexp(t, `(?m)^process_start_time_seconds `, string(metrics))
	srv.stop(t)
	assert.Contains(t, srv.logs.String(), "pprof serving")

	off := startServer(t, dir)
	assert.NotContains(t, off.logs.String(), "pprof serving", "profiles are off by default")
	off.stop(t)
}
