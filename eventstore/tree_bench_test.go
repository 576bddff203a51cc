package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkInclusionProof measures inclusion proofs at a random leaf of a
// tree of CUSTOS_BENCH_LEAVES leaves (default 2^20) written straight into
// Pebble the way the sequencer lays them out, and reports p50 and p99.
// reader=store is the code behind Store.InclusionProof (tlog.ProveRecord
// over cachedReader: upper levels from the cache the sequencer fills, the
// rest with one iterator); reader=get is the earlier one Get per hash.
func BenchmarkInclusionProof(b *testing.B) {
	n := uint64(1 << 20)
	if v := os.Getenv("CUSTOS_BENCH_LEAVES"); v != "" {
		var err error
		if n, err = strconv.ParseUint(v, 10, 64); err != nil {
			b.Fatal(err)
		}
	}
	db, err := pebble.Open(b.TempDir(), &pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cache := &treeCache{}
	tree := treeFactory.NewEmptyRange(0)
	batch := db.NewBatch()
	var leaf [8]byte
	for i := range n {
		binary.BigEndian.PutUint64(leaf[:], i)
		h := sha256.Sum256(leaf[:])
		if err := tree.Append(h[:], func(id compact.NodeID, hash []byte) {
			_ = batch.Set(TreeKey("default", storedIndex(id)), hash, nil)
			cache.putNode(id, hash)
		}); err != nil {
			b.Fatal(err)
		}
		if batch.Count() > 100_000 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = db.NewBatch()
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, rc := range []struct {
		name string
		r    tlog.HashReader
	}{
		{"reader=store", cachedReader{db: db, chain: "default", cache: cache}},
		{"reader=get", hashReader{db: db, chain: "default"}},
	} {
		b.Run(rc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := tlog.ProveRecord(int64(n), int64(rng.Uint64N(n)), rc.r); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(n), "leaves")
		})
	}
}
