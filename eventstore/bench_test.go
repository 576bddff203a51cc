package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// benchPayload is about the size of a decision.made payload.
var benchPayload = []byte(`{"decision":"ALLOW","reason":"Access granted","policy_name":"loan-officer","policy_id":"pol_01JQ7Z6V0000000000000000AA","policy_version":3,"request":{"agent_role":"loan_officer","agent_id":"agent-7","user_id":"u-1","source_id":"crm","sensitivity_level":"medium","session_id":"6a4db3cf-1f0e-4c55-9b1e-7f1d7c1a2b3c","task_type":"loan_review","action":"read"},"key_id":"key_01JQ7Z6V0000000000000000AB"}`)

// BenchmarkDurableAppend measures durable (fsynced) appends per second with 1
// and 64 concurrent appenders on the disk under the test's temp folder.
// With signed=true every group commit also signs a checkpoint (the tree
// is always extended).
func BenchmarkDurableAppend(b *testing.B) {
	for _, bc := range []struct {
		appenders int
		signed    bool
	}{{1, false}, {1, true}, {64, false}, {64, true}} {
		appenders := bc.appenders
		b.Run(fmt.Sprintf("appenders=%d/signed=%t", appenders, bc.signed), func(b *testing.B) {
			var commits, committed atomic.Int64
			var syncTime atomic.Int64
			var signer *checkpoint.Signer
			if bc.signed {
				signer = eventstoretest.NewSigner(b, "custos.bench/x")
			}
			s, err := eventstore.Open(eventstore.Options{Dir: b.TempDir(), CreateIfMissing: true, Signer: signer,
				CommitObserver: func(n int, took time.Duration) {
					commits.Add(1)
					committed.Add(int64(n))
					syncTime.Add(int64(took))
				}})
			require.NoError(b, err)
			defer s.Close()
			d := eventstore.Draft{Type: "decision.made", Actor: "key_bench", Payload: benchPayload}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range appenders {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Append(context.Background(), eventstore.DefaultChain, d); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if c := commits.Load(); c > 0 {
				b.ReportMetric(float64(committed.Load())/float64(c), "records/commit")
				b.ReportMetric(float64(syncTime.Load())/float64(c)/1e3, "µs/commit")
			}
		})
	}
}

// BenchmarkRawPebbleSyncBatches is the ceiling for BenchmarkDurableAppend:
// Pebble alone committing synced batches of records of the same size, from
// one goroutine, with no hashing or sequencing.
func BenchmarkRawPebbleSyncBatches(b *testing.B) {
	for _, size := range []int{64, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{})
			require.NoError(b, err)
			defer db.Close()
			r := eventstore.Record{Chain: eventstore.DefaultChain, ID: "01JQ7Z6V0000000000000000AA", Type: "decision.made", Actor: "key_bench", Payload: benchPayload, HashVersion: 1}
			value := append(r.Encode(nil), make([]byte, eventstore.HashSize)...)
			b.ResetTimer()
			seq := uint64(0)
			for written := 0; written < b.N; {
				batch := db.NewBatch()
				for i := 0; i < size && written < b.N; i++ {
					seq++
					written++
					_ = batch.Set(eventstore.RecordKey(eventstore.DefaultChain, seq), value, nil)
				}
				if err := batch.Commit(pebble.Sync); err != nil {
					b.Fatal(err)
				}
				_ = batch.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
