package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// Crash drill parameters. CUSTOS_DRILL_CYCLES raises the cycles,
// CUSTOS_SEED replays a logged run.
const (
	drillCycles      = 5
	drillConnections = 64
	drillKillMin     = 200 * time.Millisecond
	drillKillSpread  = 500 * time.Millisecond // kill 200-700 ms into the load
)

// drillPolicy lets loan_officer read crm and denies hr_records, so the load
// makes both ALLOW and DENY decisions.
const drillPolicy = `{"name":"drill-policy","agent_role":"loan_officer",
  "allowed_sources":["crm"],"denied_sources":["hr_records"],"max_sensitivity":"high"}`

// ack is one evaluation the server answered with 200: a promise that the
// decision is on the log at seq.
type ack struct {
	seq     uint64
	id      string
	session string // unique per request: ties the record to the request
	cycle   int
}

// TestCrashDrillKeepsEveryAcknowledgedDecision runs `custos serve`, drives
// evaluations over 64 keep-alive connections, kills the process with
// SIGKILL at a random moment, restarts it on the same folder and checks that
// every decision answered with 200 is on the log at the seq it was answered
// with, for the request it answered, and that `custos verify` accepts the
// chain. It repeats that CUSTOS_DRILL_CYCLES times (default 5).
func TestCrashDrillKeepsEveryAcknowledgedDecision(t *testing.T) {
	if testing.Short() {
		t.Skip("crash drill: skipped with -short")
	}
	t.Parallel()
	cycles := envInt(t, "CUSTOS_DRILL_CYCLES", drillCycles)
	seed := eventstoretest.Seed(t)
	t.Logf("crash drill: %d cycles", cycles)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin, "bootstrap admin key on stdout")
	evalKey, evalKeyID := drillSetup(t, srv, admin)

	var all []ack
	for cycle := range cycles {
		began := time.Now()
		if cycle > 0 {
			srv = startServer(t, dir)
			require.NotContains(t, srv.stdout.String(), "first admin key", "the bootstrap runs once")
		}
		killAfter := drillKillMin + time.Duration(rng.Int64N(int64(drillKillSpread)))
		acks := drillLoad(t, srv, evalKey, cycle, killAfter)
		t.Logf("cycle %d: killed %v into the load, %d decisions acknowledged", cycle, killAfter, len(acks))
		require.NotEmpty(t, acks, "cycle %d: no evaluation was answered before the kill", cycle)
		all = append(all, acks...)

		// The restarted server recovers, serves, and its own check of the
		// live chain passes; then it stops gracefully so the folder can be
		// read offline.
		re := startServer(t, dir)
		assert.NotContains(t, re.stdout.String(), "first admin key", "the bootstrap is not repeated")
		code, body := re.do(t, http.MethodGet, "/readyz", "", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		code, body = re.do(t, http.MethodGet, "/v1/audit/verify", admin, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		assert.Contains(t, string(body), `"valid":true`, "live verify after cycle %d", cycle)
		re.stop(t)

		// This cycle's decisions now; every cycle's once more at the end,
		// so the drill stays linear in its cycles.
		requireAcknowledged(t, dir, evalKeyID, acks, fmt.Sprintf("cycle %d (seed %d)", cycle, seed))
		requireEvidence(t, dir, fmt.Sprintf("cycle %d (seed %d)", cycle, seed))
		v := runCLI(t, nil, "verify", "--data", dir)
		require.Equal(t, 0, v.code, "cycle %d (seed %d): custos verify: %s%s", cycle, seed, v.stdout, v.stderr)
		a := runCLI(t, nil, "audit", "check", "--data", dir)
		require.Equal(t, 0, a.code, "cycle %d (seed %d): custos audit check: %s%s", cycle, seed, a.stdout, a.stderr)
		t.Logf("cycle %d: checked in %v", cycle, time.Since(began).Round(time.Millisecond))
	}
	requireAcknowledged(t, dir, evalKeyID, all, fmt.Sprintf("all cycles (seed %d)", seed))

	// The check itself must be able to fail: a decision acknowledged but
	// missing, and one at the wrong seq, are both reported.
	last := all[len(all)-1]
	fake := []ack{
		{seq: 1 << 40, id: "01LOSTLOSTLOSTLOSTLOSTLOST", session: "lost", cycle: -1},
		{seq: last.seq, id: "01WRONGWRONGWRONGWRONGWRON", session: last.session, cycle: -1},
	}
	assert.Len(t, checkAcknowledged(t, dir, evalKeyID, fake), len(fake), "the checker reports a lost decision")
}

// drillSetup creates a policy, registers and approves an agent and creates
// an evaluate key bound to it, all with the admin key. It returns the key
// and its id.
func drillSetup(t *testing.T, srv *server, admin string) (key, keyID string) {
	t.Helper()
	code, body := srv.do(t, http.MethodPost, "/v1/policies", admin, drillPolicy)
	require.Equal(t, http.StatusCreated, code, "create policy: %s", body)
	code, body = srv.do(t, http.MethodPost, "/v1/agents", admin, `{"agent_id":"drill-agent","agent_role":"loan_officer"}`)
	require.Equal(t, http.StatusCreated, code, "register agent: %s", body)
	code, body = srv.do(t, http.MethodPatch, "/v1/agents/drill-agent/status", admin, `{"status":"approved"}`)
	require.Equal(t, http.StatusOK, code, "approve agent: %s", body)
	code, body = srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name":"drill","scope":"evaluate","agent_id":"drill-agent"}`)
	require.Equal(t, http.StatusCreated, code, "create key: %s", body)
	var created struct {
		Key   string `json:"key"`
		KeyID string `json:"key_id"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	return created.Key, created.KeyID
}

// drillLoad evaluates on drillConnections keep-alive connections until it
// kills srv with SIGKILL after killAfter, and returns every acknowledged
// decision. Any failure before the kill fails the test.
func drillLoad(t *testing.T, srv *server, key string, cycle int, killAfter time.Duration) []ack {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: drillConnections, MaxConnsPerHost: drillConnections},
		Timeout:   20 * time.Second,
	}
	defer client.CloseIdleConnections()
	var (
		killed atomic.Bool
		mu     sync.Mutex
		acks   []ack
		wg     sync.WaitGroup
	)
	for worker := range drillConnections {
		wg.Go(func() {
			var mine []ack
			defer func() {
				mu.Lock()
				acks = append(acks, mine...)
				mu.Unlock()
			}()
			for n := 0; ; n++ {
				session := fmt.Sprintf("drill-%d-%d-%d", cycle, worker, n)
				source := "crm"
				if n%3 == 2 {
					source = "hr_records" // a DENY is a decision too
				}
				a, err := evaluateOnce(client, srv.addr, key, session, source)
				if err != nil {
					if !killed.Load() {
						t.Errorf("cycle %d worker %d before the kill: %v", cycle, worker, err)
					}
					return
				}
				a.cycle = cycle
				mine = append(mine, a)
			}
		})
	}
	time.Sleep(killAfter)
	killed.Store(true)
	require.NoError(t, srv.cmd.Process.Kill()) // SIGKILL: no shutdown code runs
	wg.Wait()
	<-srv.logsDone
	err := srv.cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the server was running until killed; logs: %s", srv.logs.String())
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok && status.Signaled() && status.Signal() == syscall.SIGKILL,
		"the server died of SIGKILL, not on its own: %v; logs: %s", err, srv.logs.String())
	return acks
}

// errNotAcknowledged is an answer that promises nothing.
var errNotAcknowledged = errors.New("not acknowledged")

// evaluateOnce asks for one decision; it returns an ack only for a complete
// 200 answer.
func evaluateOnce(client *http.Client, addr, key, session, source string) (ack, error) {
	body := fmt.Sprintf(`{"agent_role":"loan_officer","agent_id":"drill-agent","user_id":"u-1",`+
		`"source_id":%q,"sensitivity_level":"low","session_id":%q}`, source, session)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		"http://"+addr+"/v1/context/evaluate", strings.NewReader(body))
	if err != nil {
		return ack{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return ack{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return ack{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return ack{}, fmt.Errorf("%w: status %d: %s", errNotAcknowledged, resp.StatusCode, b)
	}
	var got struct {
		EventID   string `json:"event_id"`
		Seq       uint64 `json:"seq"`
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		return ack{}, fmt.Errorf("%w: body %s: %v", errNotAcknowledged, b, err)
	}
	if got.EventID == "" || got.Seq == 0 || got.SessionID != session {
		return ack{}, fmt.Errorf("%w: incomplete answer %s", errNotAcknowledged, b)
	}
	return ack{seq: got.Seq, id: got.EventID, session: session}, nil
}

// requireAcknowledged fails the test when checkAcknowledged finds problems.
func requireAcknowledged(t *testing.T, dir, keyID string, acks []ack, what string) {
	t.Helper()
	requireAcknowledgedOn(t, dir, eventstore.DefaultChain, keyID, acks, what)
}

// requireAcknowledgedOn is requireAcknowledged on chain.
func requireAcknowledgedOn(t *testing.T, dir, chain, keyID string, acks []ack, what string) {
	t.Helper()
	if problems := checkAcknowledgedOn(t, dir, chain, keyID, acks); len(problems) > 0 {
		shown := problems[:min(len(problems), 20)]
		t.Fatalf("%s: %d of %d acknowledged decisions lost or changed; first:\n%s",
			what, len(problems), len(acks), strings.Join(shown, "\n"))
	}
}

// checkAcknowledged opens the store in dir read-only and returns one line
// for every ack whose seq does not hold a decision.made with its event id,
// made by keyID for its session; and for seqs acknowledged twice.
func checkAcknowledged(t *testing.T, dir, keyID string, acks []ack) []string {
	t.Helper()
	return checkAcknowledgedOn(t, dir, eventstore.DefaultChain, keyID, acks)
}

// checkAcknowledgedOn is checkAcknowledged on chain.
func checkAcknowledgedOn(t *testing.T, dir, chain, keyID string, acks []ack) []string {
	t.Helper()
	store, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()

	var problems []string
	seen := make(map[uint64]ack, len(acks))
	ctx := context.Background()
	for _, a := range acks {
		if prev, dup := seen[a.seq]; dup {
			problems = append(problems, fmt.Sprintf("seq %d acknowledged twice: %s (cycle %d) and %s (cycle %d)",
				a.seq, prev.id, prev.cycle, a.id, a.cycle))
			continue
		}
		seen[a.seq] = a
		rec, err := store.Get(ctx, chain, a.seq)
		if errors.Is(err, eventstore.ErrNotFound) {
			problems = append(problems, fmt.Sprintf("lost: seq %d event %s session %s (cycle %d) is not on the log", a.seq, a.id, a.session, a.cycle))
			continue
		}
		require.NoError(t, err)
		if rec.ID != a.id {
			problems = append(problems, fmt.Sprintf("seq %d holds event %s, acknowledged as %s (session %s, cycle %d)", a.seq, rec.ID, a.id, a.session, a.cycle))
			continue
		}
		made, err := decision.Decode(rec.Type, rec.Payload)
		if err != nil {
			problems = append(problems, fmt.Sprintf("seq %d event %s is a %s, not a decision: %v", a.seq, a.id, rec.Type, err))
			continue
		}
		if made.Request.SessionID != a.session || rec.Actor != keyID {
			problems = append(problems, fmt.Sprintf("seq %d event %s decides session %s by %s, acknowledged for session %s by %s",
				a.seq, a.id, made.Request.SessionID, rec.Actor, a.session, keyID))
		}
	}
	return problems
}

// envInt reads a positive int from the environment, or returns def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	require.Positive(t, n, name)
	return n
}

// requireEvidence opens the store in dir read-only and checks the tree and
// checkpoints against the records after a crash: the tree root is the one
// recomputed from the records, every kept checkpoint verifies, covers no
// more than the durable records and signs the root of that prefix (so every
// pair of them is consistent, which the consistency proofs between
// successive ones also show).
func requireEvidence(t *testing.T, dir, what string) {
	t.Helper()
	v, err := checkpoint.NewVerifier(signerOf(t, dir).VerifierKey())
	require.NoError(t, err)
	store, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()
	ctx := context.Background()
	leaves := eventstoretest.Leaves(t, store, eventstore.DefaultChain)
	th, err := store.TreeHead(ctx, eventstore.DefaultChain)
	require.NoError(t, err)
	require.Equal(t, uint64(len(leaves)), th.Size, "%s: tree size is the record count", what)
	require.Equal(t, eventstoretest.NaiveRoot(leaves), th.Root, "%s: tree root recomputed from the records", what)

	tree := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	var prev checkpoint.Checkpoint
	kept := 0
	require.NoError(t, store.Checkpoints(ctx, eventstore.DefaultChain, func(size uint64, msg []byte) error {
		cp, err := v.Open(msg, eventstore.DefaultChain)
		require.NoError(t, err, "%s: checkpoint %d", what, size)
		require.Equal(t, size, cp.Size)
		require.LessOrEqual(t, cp.Size, uint64(len(leaves)), "%s: checkpoint %d covers records that are not durable", what, size)
		for tree.End() < cp.Size {
			require.NoError(t, tree.Append(leaves[tree.End()][:], nil))
		}
		root, err := tree.GetRootHash(nil)
		require.NoError(t, err)
		require.Equal(t, root, cp.Root[:], "%s: checkpoint %d signs another root than its records'", what, size)
		if prev.Size > 0 && prev.Size < cp.Size {
			p, err := store.ConsistencyProof(ctx, eventstore.DefaultChain, prev.Size, cp.Size)
			require.NoError(t, err)
			tp := make(tlog.TreeProof, len(p))
			for i := range p {
				tp[i] = tlog.Hash(p[i])
			}
			require.NoError(t, tlog.CheckTree(tp, int64(cp.Size), tlog.Hash(cp.Root), int64(prev.Size), tlog.Hash(prev.Root)),
				"%s: checkpoints %d and %d", what, prev.Size, cp.Size)
		}
		prev = cp
		kept++
		return nil
	}))
	require.Positive(t, kept, "%s: no checkpoint kept", what)
	require.Equal(t, th.Size, prev.Size, "%s: the latest checkpoint covers every durable record", what)
}
