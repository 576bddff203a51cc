package eventstore_test

import (
	"bufio"
	"context"
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

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// crashChildEnv makes the test binary act as the crash test's child process.
const crashChildEnv = "CUSTOS_CRASH_CHILD_DIR"

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
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
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
// acknowledged record is there, byte for byte, and that the chain verifies.
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

	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
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

		s, err := eventstore.Open(eventstore.Options{Dir: dir})
		require.NoError(t, err, "cycle %d: reopen after SIGKILL", cycle)
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
