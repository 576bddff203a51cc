package main_test

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// witnessProc is a `custos witness serve` process.
type witnessProc struct {
	cmd        *exec.Cmd
	url, vkey  string
	logs       *eventstoretest.Buffer
	state, key string
}

func startWitnessProc(t *testing.T, dir, name string, logVkeyFile string) *witnessProc {
	t.Helper()
	addr := freeAddr(t)
	w := &witnessProc{url: "http://" + addr, logs: &eventstoretest.Buffer{}, state: filepath.Join(dir, name+".state"), key: filepath.Join(dir, name+".key")}
	w.cmd = exec.Command(binary, "witness", "serve", "--addr", addr, "--state", w.state, "--key", w.key,
		"--name", "witness.test/"+name, "--log", logVkeyFile)
	stderr, err := w.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, w.cmd.Start())
	t.Cleanup(func() { _ = w.cmd.Process.Kill(); _ = w.cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		next := false
		for sc.Scan() {
			line := sc.Text()
			w.logs.WriteString(line + "\n")
			if next {
				w.vkey, next = strings.TrimSpace(line), false
			}
			if strings.Contains(line, "witness verifier key") {
				next = true
			}
			if strings.Contains(line, "custos witness serving") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("witness did not start: %s", w.logs.String())
	}
	require.NotEmpty(t, w.vkey)
	return w
}

func TestServeWithTwoWitnessesGetsCosignedAndADownWitnessBlocksNothing(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	vkeyFile := filepath.Join(base, "vkey")
	r := runCLI(t, nil, "init", "--data", dir, "--origin", "custos.test/e2e", "--vkey-out", vkeyFile)
	require.Equal(t, 0, r.code, r.stderr)
	w1 := startWitnessProc(t, base, "w1", vkeyFile)
	w2 := startWitnessProc(t, base, "w2", vkeyFile)

	srv := startServerWith(t, dir, nil, "--witness", w1.url+"="+w1.vkey, "--witness", w2.url+"="+w2.vkey,
		"--witness-quorum", "2", "--witness-interval", "100ms", "--witness-timeout", "500ms")
	admin := strings.TrimSpace(r.stdout)
	key, _ := drillSetup(t, srv, admin)

	cosigned := func(min int) string {
		var body string
		require.Eventually(t, func() bool {
			code, b := srv.do(t, http.MethodGet, "/v1/audit/checkpoint", admin, "")
			body = string(b)
			return code == http.StatusOK && strings.Count(body, "— witness.test/") >= min
		}, 10*time.Second, 50*time.Millisecond, "no cosigned checkpoint; logs: %s", srv.logs.String())
		return body
	}
	cp := cosigned(2)
	cpFile := filepath.Join(base, "cp")
	require.NoError(t, os.WriteFile(cpFile, []byte(cp), 0o644))

	// One witness down: evaluate answers at once, nothing waits for it.
	require.NoError(t, w2.cmd.Process.Kill())
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 20 {
		start := time.Now()
		_, err := evaluateOnce(client, srv.addr, key, "witness-down-"+string(rune('a'+i)), "crm")
		require.NoError(t, err)
		require.Less(t, time.Since(start), 400*time.Millisecond, "an evaluate waited on a down witness (timeout 500ms)")
	}
	srv.stop(t)

	// verify takes the cosigned checkpoint and requires the witnesses.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 0},
		{[]string{"--witness-vkey", w1.vkey, "--witness-vkey", w2.vkey}, 0},
		{[]string{"--witness-vkey", w1.vkey, "--witness-quorum", "1"}, 0},
	} {
		got := runCLI(t, nil, append([]string{"verify", "--data", dir, "--checkpoint", cpFile, "--vkey", vkeyFile}, tc.args...)...)
		require.Equal(t, tc.code, got.code, "%v: %s", tc.args, got.stderr)
	}
	plain := filepath.Join(base, "plain")
	require.NoError(t, os.WriteFile(plain, []byte(cp[:strings.Index(cp, "— witness.test/")]), 0o644))
	got := runCLI(t, nil, "verify", "--data", dir, "--checkpoint", plain, "--vkey", vkeyFile, "--witness-vkey", w1.vkey)
	require.Equal(t, 2, got.code)
	require.Contains(t, got.stderr, "not enough cosignatures")

	// A rewrite of the folder with a fresh signing key: serve refuses to
	// start (the kept cosigned checkpoint no longer matches).
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.Remove(signingKeyOf(dir)))
	r = runCLI(t, nil, "init", "--data", dir, "--origin", "custos.test/e2e", "--vkey-out", filepath.Join(base, "vkey2"))
	require.Equal(t, 0, r.code, r.stderr)
	failed := runCLI(t, nil, "serve", "--data", dir, "--addr", freeAddr(t), "--witness", w1.url+"="+w1.vkey)
	require.Equal(t, 1, failed.code, failed.stderr)
	require.Contains(t, failed.stderr, "contradicts its latest cosigned checkpoint")
}
