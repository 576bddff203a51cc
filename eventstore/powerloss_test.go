package eventstore_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// TestPowerLossKeepsAcknowledgedRecords simulates losing the page cache
// (power loss, kernel crash), which a SIGKILL of the process does not: the
// store runs on Pebble's crashable in-memory filesystem, and a crash clone
// keeps only what was fsynced plus a random part of what was not. Every
// record acknowledged before the clone must be in it, and the clone's chain
// must verify. The crash test with a killed process cannot catch a missing
// fsync; this one does.
func TestPowerLossKeepsAcknowledgedRecords(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	for cycle := range 5 {
		fs := vfs.NewCrashableMem()
		s, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: fs, CreateIfMissing: true})
		require.NoError(t, err)

		var mu sync.Mutex
		acked := map[uint64]eventstore.Hash{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					recs, err := s.Append(context.Background(), eventstore.DefaultChain, draft(w*100000+i))
					if err != nil {
						return
					}
					mu.Lock()
					acked[recs[0].Seq] = recs[0].Hash
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
		// Everything acknowledged so far must survive the crash clone.
		mu.Lock()
		mustSurvive := make(map[uint64]eventstore.Hash, len(acked))
		for seq, h := range acked {
			mustSurvive[seq] = h
		}
		mu.Unlock()
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(60), RNG: rand.New(rand.NewPCG(seed, uint64(cycle)))})
		cancel()
		wg.Wait()
		require.NoError(t, s.Close())

		reopened, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: clone})
		require.NoError(t, err, "cycle %d", cycle)
		report, err := verify.Store(context.Background(), reopened, eventstore.DefaultChain)
		require.NoError(t, err)
		require.True(t, report.Valid, "cycle %d: %+v", cycle, report.Detail)
		for seq, want := range mustSurvive {
			r, err := reopened.Get(context.Background(), eventstore.DefaultChain, seq)
			require.NoError(t, err, "cycle %d: acknowledged seq %d lost in the crash", cycle, seq)
			require.Equal(t, want, r.Hash)
		}
		require.NoError(t, reopened.Close())
		t.Logf("cycle %d: %d acknowledged records survived, chain head %d", cycle, len(mustSurvive), report.HeadSeq)
	}
}
