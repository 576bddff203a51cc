package verify_test

import (
	"context"
	"crypto/sha256"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

// benchStore is a store of CUSTOS_BENCH_RECORDS records (default 1M),
// built once per benchmark process.
var benchStore struct {
	once sync.Once
	dir  string
	n    int
	err  error
}

func buildBenchStore(b *testing.B) (string, int) {
	benchStore.once.Do(func() {
		n := 1_000_000
		if v := os.Getenv("CUSTOS_BENCH_RECORDS"); v != "" {
			n, benchStore.err = strconv.Atoi(v)
		}
		dir, err := os.MkdirTemp("", "custos-verify-bench")
		if err != nil {
			benchStore.err = err
			return
		}
		s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
		if err != nil {
			benchStore.err = err
			return
		}
		payload := []byte(`{"decision":"ALLOW","reason":"Access granted","policy_name":"loan-officer","request":{"agent_role":"loan_officer","source_id":"crm","sensitivity_level":"medium","session_id":"6a4db3cf-1f0e-4c55-9b1e","action":"read"}}`)
		drafts := make([]eventstore.Draft, 1000)
		for i := range drafts {
			drafts[i] = eventstore.Draft{Type: "decision.made", Actor: "key_bench", Payload: payload}
		}
		for written := 0; written < n; written += len(drafts) {
			if _, err := s.Append(context.Background(), eventstore.DefaultChain, drafts[:min(len(drafts), n-written)]...); err != nil {
				benchStore.err = err
				return
			}
		}
		benchStore.dir, benchStore.n, benchStore.err = dir, n, s.Close()
	})
	require.NoError(b, benchStore.err)
	return benchStore.dir, benchStore.n
}

// BenchmarkVerify measures verify.Store over the whole chain; compare its
// records/s with BenchmarkRawScanHash in the same run.
func BenchmarkVerify(b *testing.B) {
	dir, n := buildBenchStore(b)
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(b, err)
	defer s.Close()
	b.ResetTimer()
	for range b.N {
		r, err := verify.Store(context.Background(), s, eventstore.DefaultChain)
		require.NoError(b, err)
		require.True(b, r.Valid)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRawScanHash is the ceiling for BenchmarkVerify: a bare Pebble
// iteration over the same records with one SHA-256 per value.
func BenchmarkRawScanHash(b *testing.B) {
	dir, n := buildBenchStore(b)
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true})
	require.NoError(b, err)
	defer db.Close()
	b.ResetTimer()
	for range b.N {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'r'}, UpperBound: []byte{'s'}})
		require.NoError(b, err)
		count := 0
		for it.First(); it.Valid(); it.Next() {
			h := sha256.New()
			h.Write([]byte{0})
			h.Write(it.Value())
			_ = h.Sum(nil)
			count++
		}
		require.NoError(b, it.Close())
		require.Equal(b, n, count)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
