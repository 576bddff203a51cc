package eventstore_test

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// crashChildEnv makes the test binary act as the crash test's child process.
const crashChildEnv = "CUSTOS_CRASH_CHILD_DIR"

// crashKeyEnv hands the child its checkpoint signer key.
const crashKeyEnv = "CUSTOS_CRASH_CHILD_KEY"

// TestMain lets this test binary double as the child process of the crash
// test.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// runCrashChild appends from 32 concurrent writers until it is killed and
// prints "seq hash payload" for every acknowledged (durable) record.
func runCrashChild(dir string) {
	signer, err := checkpoint.NewSigner(os.Getenv(crashKeyEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child key:", err)
		os.Exit(3)
	}
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true, Signer: signer})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var out sync.Mutex
	fmt.Println("ready")
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				payload := fmt.Sprintf("w%d-i%d-pid%d", w, i, os.Getpid())
				recs, err := s.Append(context.Background(), eventstore.DefaultChain,
					eventstore.Draft{Type: "crash.test", Actor: "system:crash", Payload: []byte(payload)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(4)
				}
				out.Lock()
				fmt.Printf("%d %x %s\n", recs[0].Seq, recs[0].Hash, payload)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

type ackedRecord struct {
	hash    string
	payload string
}

// TestCrashLosesNoAcknowledgedRecord kills a real appending process with
// SIGKILL at a random moment, reopens the folder and checks that every
// acknowledged record is there, byte for byte, and that the chain verifies;
// that the tree's root is the one recomputed from the records; that every
// kept checkpoint signs a root of the records and is consistent with the
// next; and that the latest covers every acknowledged record and no record
// that is not there (none signs what was not durable).
// CUSTOS_CRASH_CYCLES raises the number of cycles (default 10).
func TestCrashLosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts real processes; skipped with -short")
	}
	cycles := 10
	if v := os.Getenv("CUSTOS_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		cycles = n
	}
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	acked := map[uint64]ackedRecord{}
	skey, vkey, err := checkpoint.GenerateKey(crand.Reader, "custos.test/crash")
	require.NoError(t, err)
	signer, err := checkpoint.NewSigner(skey)
	require.NoError(t, err)
	verifier, err := checkpoint.NewVerifier(vkey)
	require.NoError(t, err)

	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKeyEnv+"="+skey)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())

		lines := bufio.NewScanner(stdout)
		require.True(t, lines.Scan(), "child did not start: %s", stderr.String())
		require.Equal(t, "ready", lines.Text())
		killAfter := time.Duration(20+rng.IntN(280)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		before := len(acked)
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			require.Len(t, f, 3, "child line %q", lines.Text())
			seq, err := strconv.ParseUint(f[0], 10, 64)
			require.NoError(t, err)
			acked[seq] = ackedRecord{hash: f[1], payload: f[2]}
		}
		timer.Stop()
		_ = cmd.Wait()
		require.NotContains(t, stderr.String(), "child", "child failed on its own: %s", stderr.String())

		s, err := eventstore.Open(eventstore.Options{Dir: dir, Signer: signer})
		require.NoError(t, err, "cycle %d: reopen after SIGKILL", cycle)
		maxAcked := uint64(0)
		for seq := range acked {
			maxAcked = max(maxAcked, seq)
		}
		requireCheckpointsHold(t, s, verifier, maxAcked)
		report, err := verify.Store(context.Background(), s, eventstore.DefaultChain)
		require.NoError(t, err)
		require.True(t, report.Valid, "cycle %d: %+v", cycle, report.Detail)
		found := 0
		require.NoError(t, s.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
			if want, ok := acked[r.Seq]; ok {
				found++
				require.Equal(t, want.hash, hex.EncodeToString(r.Hash[:]), "cycle %d seq %d", cycle, r.Seq)
				require.Equal(t, want.payload, string(r.Payload), "cycle %d seq %d", cycle, r.Seq)
			}
			return nil
		}))
		require.Equal(t, len(acked), found, "cycle %d: acknowledged records lost", cycle)
		require.NoError(t, s.Close())
		t.Logf("cycle %d: killed after %v, %d acknowledged this cycle, chain head %d", cycle, killAfter, len(acked)-before, report.HeadSeq)
	}
}

// requireCheckpointsHold checks a reopened store's tree and checkpoints:
// the root is recomputed from the records, each kept checkpoint verifies,
// signs the records' root at its size and is consistent with the next, and
// the latest signs exactly the head, which covers every acknowledged seq.
func requireCheckpointsHold(t *testing.T, s *eventstore.Store, v *checkpoint.Verifier, acked uint64) {
	t.Helper()
	ctx := context.Background()
	leaves := eventstoretest.Leaves(t, s, eventstore.DefaultChain)
	th, err := s.TreeHead(ctx, eventstore.DefaultChain)
	require.NoError(t, err)
	require.Equal(t, uint64(len(leaves)), th.Size)
	require.Equal(t, eventstoretest.NaiveRoot(leaves), th.Root, "tree root equals the root recomputed from the records")
	var prev *checkpoint.Checkpoint
	kept := 0
	require.NoError(t, s.Checkpoints(ctx, eventstore.DefaultChain, func(size uint64, msg []byte) error {
		cp, err := v.Open(msg, eventstore.DefaultChain)
		require.NoError(t, err)
		require.Equal(t, size, cp.Size)
		require.LessOrEqual(t, cp.Size, th.Size, "a checkpoint covers records that are not there")
		require.Equal(t, [32]byte(eventstoretest.NaiveRoot(leaves[:cp.Size])), cp.Root, "checkpoint %d signs another root than the records'", cp.Size)
		if prev != nil {
			p, err := s.ConsistencyProof(ctx, eventstore.DefaultChain, prev.Size, cp.Size)
			require.NoError(t, err)
			require.NoError(t, tlog.CheckTree(tlogProof(p), int64(cp.Size), cp.Root, int64(prev.Size), prev.Root), "checkpoint %d is inconsistent with %d", prev.Size, cp.Size)
		}
		prev = &cp
		kept++
		return nil
	}))
	if th.Size == 0 {
		return
	}
	require.NotNil(t, prev, "records but no checkpoint")
	require.Equal(t, th.Size, prev.Size, "the latest checkpoint covers the head")
	require.GreaterOrEqual(t, prev.Size, acked, "an acknowledged record is covered by no checkpoint")
	t.Logf("%d kept checkpoints, latest at %d", kept, prev.Size)
}

func tlogProof(p []eventstore.Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}
