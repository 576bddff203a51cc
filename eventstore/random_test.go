package eventstore_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// TestRandomConcurrentAppends runs random concurrent appends (random writer
// count, group sizes, payload sizes, chains, reopen points) from a logged
// seed, then checks that verify passes and every acknowledged record reads
// back identical.
func TestRandomConcurrentAppends(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	chains := []string{eventstore.DefaultChain, "tenant-a"}
	acked := map[string]map[uint64]eventstore.Record{}
	for _, c := range chains {
		acked[c] = map[uint64]eventstore.Record{}
	}
	for round := range 3 {
		s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true, MaxBatchRecords: 1 + rng.IntN(64)})
		require.NoError(t, err)
		writers := 1 + rng.IntN(48)
		plans := make([][]int, writers)
		for w := range plans {
			for range 1 + rng.IntN(40) {
				plans[w] = append(plans[w], rng.IntN(1<<16))
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seed, uint64(round*1000+w)))
				for _, size := range plans[w] {
					chain := chains[size%len(chains)]
					drafts := make([]eventstore.Draft, 1+size%4)
					for i := range drafts {
						payload := make([]byte, r.IntN(2048))
						for j := range payload {
							payload[j] = byte(r.Uint32())
						}
						drafts[i] = eventstore.Draft{Type: "random.appended", Actor: "system:random", Payload: payload}
					}
					recs, err := s.Append(context.Background(), chain, drafts...)
					if !assertNoErr(t, err) {
						return
					}
					mu.Lock()
					for _, rec := range recs {
						acked[chain][rec.Seq] = rec
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.NoError(t, s.Close())
	}

	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	for _, c := range chains {
		report, err := verify.Store(context.Background(), s, c)
		require.NoError(t, err)
		require.True(t, report.Valid, "chain %s: %+v", c, report.Detail)
		require.Equal(t, uint64(len(acked[c])), report.Total)
		for seq, want := range acked[c] {
			got, err := s.Get(context.Background(), c, seq)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
	}
}

func assertNoErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("append: %v", err)
		return false
	}
	return true
}
