package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// Disk fault drills: a real `custos serve` on a small tmpfs that the test
// mounts (root only; CI runs as root) is started on a full disk, has its
// disk filled under load, or has its folders removed. Each must end in a
// clear error, exit on SIGTERM within the drain timeout, and after room is
// made, restart on a chain that verifies with every acknowledged decision.

// drainTimeout is the --shutdown-timeout of these servers; stopLimit is
// how long SIGTERM may take: the drain timeout, the 2 s serve leaves for
// closing the store, and a second for the process to start and exit.
const (
	drainTimeout = 3 * time.Second
	stopLimit    = drainTimeout + 3*time.Second
)

// mountTmpfs mounts a tmpfs of size bytes on a new folder and unmounts it
// at cleanup. It skips the test when that is not possible.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("disk fault drill: mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("disk fault drill: cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file into dir until the disk is full and returns its
// path; removing it frees the space again.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return path
		}
	}
}

// startDrillServer starts `custos serve` with the drill's drain timeout.
func startDrillServer(t *testing.T, dir string) *server {
	t.Helper()
	return startServerWith(t, dir, nil, "--shutdown-timeout", drainTimeout.String())
}

// stopWithin sends SIGTERM and returns the exit code; the test fails if
// the process is still running after limit.
func stopWithin(t *testing.T, s *server, limit time.Duration) int {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan error, 1)
	go func() { <-s.logsDone; exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			require.True(t, ee.Exited(), "the server exits on its own, not by a signal: %v; logs: %s", err, s.logs.String())
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		t.Fatalf("the server ignored SIGTERM for %v; logs: %s", limit, tail(s.logs.String(), 4000))
		return -1
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// drillLoadUntil evaluates on a few connections until stop is closed and
// returns the acknowledged decisions and the statuses of the others, in
// the order each connection saw them.
func drillLoadUntil(t *testing.T, srv *server, key, tag string, stop <-chan struct{}) (acks []ack, answers [][]int) {
	t.Helper()
	const conns = 4
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var wg sync.WaitGroup
	answers = make([][]int, conns)
	for c := range conns {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				source := "crm"
				if n%3 == 2 {
					source = "hr_records"
				}
				a, err := evaluateOnce(client, srv.addr, key, fmt.Sprintf("%s-%d-%d", tag, c, n), source)
				status := http.StatusOK
				if err != nil {
					m := regexp.MustCompile(`status (\d+)`).FindStringSubmatch(err.Error())
					if m == nil {
						t.Errorf("connection %d: %v", c, err)
						return
					}
					fmt.Sscan(m[1], &status)
				} else {
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
				}
				answers[c] = append(answers[c], status)
				if status != http.StatusOK {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return acks, answers
}

// restartAndCheck frees nothing itself: it restarts the server on dir,
// checks that it serves and its live verify passes, stops it, and checks
// the chain offline and every acknowledged decision.
func restartAndCheck(t *testing.T, dir, admin, keyID string, acks []ack) {
	t.Helper()
	re := startDrillServer(t, dir)
	code, body := re.do(t, http.MethodGet, "/v1/audit/verify", admin, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), `"valid":true`)
	code, body = re.do(t, http.MethodGet, "/v1/audit/events?limit=1", admin, "")
	require.Equal(t, http.StatusOK, code, "the audit index serves again: %s", body)
	require.Equal(t, 0, stopWithin(t, re, stopLimit), "logs: %s", re.logs.String())
	v := runCLI(t, nil, "verify", "--data", dir)
	require.Equal(t, 0, v.code, "custos verify: %s%s", v.stdout, v.stderr)
	requireAcknowledged(t, dir, keyID, acks, "after the disk fault")
}

// drillStart starts a server on a new store in dir, sets up the drill
// policy, agent and key, and returns them.
func drillStart(t *testing.T, dir string) (srv *server, admin, key, keyID string) {
	t.Helper()
	srv = startDrillServer(t, dir)
	admin = regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)
	key, keyID = drillSetup(t, srv, admin)
	return srv, admin, key, keyID
}

// someDecisions makes n decisions and returns them.
func someDecisions(t *testing.T, srv *server, key, tag string, n int) []ack {
	t.Helper()
	var acks []ack
	for i := range n {
		source := []string{"crm", "hr_records"}[i%2]
		a, err := evaluateOnce(http.DefaultClient, srv.addr, key, fmt.Sprintf("%s-%d", tag, i), source)
		require.NoError(t, err)
		acks = append(acks, a)
	}
	return acks
}

func TestServeOnAFullDiskExitsWithOneLine(t *testing.T) {
	t.Parallel()
	disk := mountTmpfs(t, 16<<20)
	dir := filepath.Join(disk, "data")
	srv, admin, key, keyID := drillStart(t, dir)
	acks := someDecisions(t, srv, key, "before", 20)
	require.Equal(t, 0, stopWithin(t, srv, stopLimit))

	filler := fillDisk(t, disk)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--data", dir, "--addr", freeAddr(t))
	var stdout, stderr eventstoretest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	took := time.Since(began)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "serve on a full disk must fail; stderr: %s", tail(stderr.String(), 2000))
	assert.Equal(t, 1, ee.ExitCode(), "a store error at start exits 1; stderr: %s", tail(stderr.String(), 2000))
	assert.Less(t, took, 5*time.Second, "and does so within seconds")
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Len(t, lines, 1, "one clear line: %s", tail(stderr.String(), 2000))
	assert.Contains(t, lines[0], "no space left on device")
	assert.True(t, strings.HasPrefix(lines[0], "custos: "), lines[0])

	require.NoError(t, os.Remove(filler))
	restartAndCheck(t, dir, admin, keyID, acks)
}

func TestServeOnADiskFilledUnderLoadFailsClosed(t *testing.T) {
	t.Parallel()
	disk := mountTmpfs(t, 32<<20)
	dir := filepath.Join(disk, "data")
	srv, admin, key, keyID := drillStart(t, dir)

	stop := make(chan struct{})
	var (
		acks    []ack
		answers [][]int
		loaded  = make(chan struct{})
	)
	go func() {
		defer close(loaded)
		acks, answers = drillLoadUntil(t, srv, key, "load", stop)
	}()
	time.Sleep(300 * time.Millisecond)
	filler := fillDisk(t, disk)
	// The log fails at its next write that needs space: evaluations must
	// then answer 503, never 200.
	require.Eventually(t, func() bool {
		code, _ := srv.do(t, http.MethodGet, "/readyz", "", "")
		return code == http.StatusServiceUnavailable
	}, 15*time.Second, 50*time.Millisecond, "the store fails once the disk is full")
	time.Sleep(time.Second) // keep the load on the failed store for a while
	close(stop)
	<-loaded

	failedClosed := 0
	for c, seen := range answers {
		first503 := -1
		for i, status := range seen {
			switch {
			case status == http.StatusServiceUnavailable && first503 < 0:
				first503 = i
			case status == http.StatusOK && first503 >= 0:
				t.Fatalf("connection %d: a 200 after the store failed (answer %d of %d)", c, i, len(seen))
			}
		}
		if first503 >= 0 {
			failedClosed += len(seen) - first503
		}
	}
	t.Logf("%d decisions acknowledged, %d evaluations answered 503 after the disk filled", len(acks), failedClosed)
	require.Positive(t, failedClosed, "evaluations on a failed store answer 503")
	logs := srv.logs.String()
	assert.Less(t, strings.Count(logs, "no space left on device"), 30, "repeated errors are logged once per interval: %s", tail(logs, 4000))

	code := stopWithin(t, srv, stopLimit)
	assert.NotEqual(t, 0, code, "a server whose store failed does not exit 0")
	assert.Contains(t, srv.logs.String(), "custos: stopped after the store failed")

	require.NoError(t, os.Remove(filler))
	restartAndCheck(t, dir, admin, keyID, acks)
}

func TestServeWithItsDerivedFolderRemovedKeepsDeciding(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv, admin, key, keyID := drillStart(t, dir)
	acks := someDecisions(t, srv, key, "before", 10)

	require.NoError(t, os.RemoveAll(filepath.Join(dir, "derived")))
	require.Eventually(t, func() bool {
		code, _ := srv.do(t, http.MethodGet, "/v1/audit/events?limit=1", admin, "")
		return code == http.StatusServiceUnavailable
	}, 10*time.Second, 50*time.Millisecond, "audit queries fail once derived data is gone")
	code, body := srv.do(t, http.MethodGet, "/v1/audit/events?limit=1", admin, "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, string(body), `"detail":"Audit index unavailable`)
	code, _ = srv.do(t, http.MethodGet, "/readyz", "", "")
	assert.Equal(t, http.StatusOK, code, "the log is fine: the server stays ready")
	acks = append(acks, someDecisions(t, srv, key, "after", 10)...) // decisions keep being made and recorded

	require.Equal(t, 0, stopWithin(t, srv, stopLimit), "logs: %s", tail(srv.logs.String(), 4000))
	restartAndCheck(t, dir, admin, keyID, acks)
}

func TestServeWithItsDataFolderRemovedFailsClosed(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv, _, key, _ := drillStart(t, dir)
	someDecisions(t, srv, key, "before", 5)

	require.NoError(t, os.RemoveAll(dir))
	require.Eventually(t, func() bool {
		code, _ := srv.do(t, http.MethodGet, "/readyz", "", "")
		return code == http.StatusServiceUnavailable
	}, 10*time.Second, 50*time.Millisecond, "the store fails once its folder is gone")
	_, err := evaluateOnce(http.DefaultClient, srv.addr, key, "after-removal", "crm")
	require.ErrorIs(t, err, errNotAcknowledged, "nothing is acknowledged into a removed folder")
	assert.Contains(t, err.Error(), "status 503")

	code := stopWithin(t, srv, stopLimit)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, srv.logs.String(), "custos: stopped after the store failed: eventstore: store failed, reopen required: data folder")
	assert.Less(t, strings.Count(srv.logs.String(), "\n"), 60, "no flood of log lines: %s", tail(srv.logs.String(), 4000))
}
