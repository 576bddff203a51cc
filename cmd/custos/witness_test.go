package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// cosignedSetup is a folder that serve runs on with one witness, which has
// cosigned its head; stop srv before touching the folder.
type cosignedSetup struct {
	base, dir, vkeyFile string
	srv                 *server
	admin               string
	// backup is a copy of the folder taken after init, before serve.
	backup string
	w      *witnessProc
	// cosigned is the size the witness cosigned, as kept in DATA.cosigned.
	cosigned uint64
}

func newCosignedSetup(t *testing.T, origin string) cosignedSetup {
	t.Helper()
	base := t.TempDir()
	c := cosignedSetup{base: base, dir: filepath.Join(base, "data"), vkeyFile: filepath.Join(base, "vkey"), backup: filepath.Join(base, "backup")}
	r := requireCode(t, 0, runCLI(t, nil, "init", "--data", c.dir, "--origin", origin, "--vkey-out", c.vkeyFile))
	admin := strings.TrimSpace(r.stdout)
	c.admin = admin
	require.NoError(t, os.CopyFS(c.backup, os.DirFS(c.dir)))
	c.w = startWitnessProc(t, base, "w1", c.vkeyFile)
	srv := startServerWith(t, c.dir, nil, "--witness", c.w.url+"="+c.w.vkey, "--witness-interval", "100ms", "--witness-timeout", "2s")
	code, body := srv.do(t, http.MethodPost, "/v1/policies", admin, `{"name":"p","agent_role":"loan_officer","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body = srv.do(t, http.MethodGet, "/v1/audit/verify", admin, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var head struct {
		HeadSeq uint64 `json:"head_seq"`
	}
	require.NoError(t, json.Unmarshal(body, &head))
	require.Eventually(t, func() bool {
		c.cosigned = keptCosignedSize(t, c.dir)
		return c.cosigned >= head.HeadSeq
	}, 10*time.Second, 50*time.Millisecond, "the witness cosigned nothing up to %d; logs: %s", head.HeadSeq, srv.logs.String())
	c.srv = srv
	return c
}

// refusedServe runs serve with args, which must exit by itself within 30
// seconds: a serve that starts instead is killed and fails the test.
func refusedServe(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := runCommand(t, exec.CommandContext(ctx, binary, append([]string{"serve"}, args...)...))
	require.NoError(t, ctx.Err(), "serve started instead of refusing to; stderr: %s", res.stderr)
	return res
}

// keptCosignedSize is the size of the checkpoint in DATA.cosigned, 0 when
// there is none.
func keptCosignedSize(t *testing.T, dir string) uint64 {
	t.Helper()
	b, err := os.ReadFile(dir + ".cosigned")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	require.Greater(t, len(lines), 2, "%s", b)
	n, err := strconv.ParseUint(lines[1], 10, 64)
	require.NoError(t, err, "%s", b)
	return n
}

// TestServeRefusesAForkTheWitnessContradictsWithNothingKept: whoever holds
// the folder and its signing key restores an old copy and appends other
// records (a fork, consistent with its own checkpoints), and deletes
// DATA.cosigned so that nothing on the host remembers what witnesses saw.
// serve --witness still refuses to start: the witness holds another root.
func TestServeRefusesAForkTheWitnessContradictsWithNothingKept(t *testing.T) {
	t.Parallel()
	c := newCosignedSetup(t, "custos.test/fork")
	c.srv.stop(t)
	require.NoError(t, os.RemoveAll(c.dir))
	require.NoError(t, os.Rename(c.backup, c.dir))
	for range 3 {
		requireCode(t, 0, runCLI(t, nil, "admin-key", "reset", "--data", c.dir))
	}
	require.NoError(t, os.Remove(c.dir+".cosigned"))
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", c.dir))

	failed := requireCode(t, 1, refusedServe(t, "--data", c.dir, "--addr", freeAddr(t), "--witness", c.w.url+"="+c.w.vkey))
	assert.Contains(t, failed.stderr, "contradicts its latest cosigned checkpoint")
	assert.Contains(t, failed.stderr, c.w.url)
	_, err := os.Stat(c.dir + ".cosigned")
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing was cosigned")
}

// TestServeRefusesAWitnessThatRefusesItsKey: the folder re-initialised
// under the same origin with a new signing key (DATA.cosigned and every
// chain's DATA.cosigned.<chain> gone with it). The witness answers 403,
// and serve refuses to start saying that the log's signing key is not the
// one the witness knows.
func TestServeRefusesAWitnessThatRefusesItsKey(t *testing.T) {
	t.Parallel()
	c := newCosignedSetup(t, "custos.test/rekey")
	c.srv.stop(t)
	kept, err := filepath.Glob(c.dir + ".cosigned*")
	require.NoError(t, err)
	require.Contains(t, kept, c.dir+".cosigned.system", "the system chain is witnessed too")
	for _, f := range append([]string{c.dir, signingKeyOf(c.dir)}, kept...) {
		require.NoError(t, os.RemoveAll(f))
	}
	newVkey := filepath.Join(c.base, "vkey2")
	requireCode(t, 0, runCLI(t, nil, "init", "--data", c.dir, "--origin", "custos.test/rekey", "--vkey-out", newVkey))

	failed := requireCode(t, 1, refusedServe(t, "--data", c.dir, "--addr", freeAddr(t), "--witness", c.w.url+"="+c.w.vkey))
	assert.Contains(t, failed.stderr, "chain default: ")
	assert.Contains(t, failed.stderr, "witness "+c.w.url)
	assert.Contains(t, failed.stderr, "the log's signing key (verifier key ")
	assert.Contains(t, failed.stderr, "is not the one the witness knows for origin custos.test/rekey/default")
	assert.NotContains(t, failed.stderr, "contradicts", "the records were not shown to be rewritten")
}
