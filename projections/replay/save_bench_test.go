package replay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/projections/replay"
)

// BenchmarkSave measures the memory a snapshot save takes on top of the
// state, at 200k keys (CUSTOS_BENCH_SAVE_KEYS: another count): alloc-MiB/op is what Save allocates, peak-heap-MiB
// the most heap (live and not yet collected objects, sampled every 200 µs)
// above the heap before it, peak-rss-MiB the most resident memory (VmRSS,
// sampled every 1 ms; Linux only) above the resident size before it
// (Pebble keeps some memory outside the Go heap). The state is built
// through Apply, as a fold makes it. It uses only the exported API, so that
// it runs unchanged against an older Save.
func BenchmarkSave(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("CUSTOS_BENCH_SAVE_KEYS")); err == nil && v > 0 {
		n = v // e.g. 1000000
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	state := domain.NewState()
	var h [32]byte
	for i := range n {
		binary.BigEndian.PutUint64(h[:], uint64(i)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(h[8:], uint64(i))
		id := fmt.Sprintf("key_%026d", i)
		ev := keys.KeyCreated{KeyID: id, Name: "k", Scope: keys.ScopeEvaluate, Prefix: "cst_" + id[len(id)-6:],
			KeyHash: hex.EncodeToString(h[:]), CreatedAt: t0, ExpiresAt: t0.Add(365 * 24 * time.Hour)}
		if err := state.Apply(domain.Meta{Seq: uint64(i + 1), ID: fmt.Sprintf("01EV%022d", i+1), Time: t0}, ev); err != nil {
			b.Fatal(err)
		}
	}
	state.Keys.TakeChanged()

	store, err := eventstore.Open(eventstore.Options{Dir: b.TempDir(), CreateIfMissing: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	drafts := make([]eventstore.Draft, 16)
	for i := range drafts {
		drafts[i] = eventstoretest.Draft(i)
	}
	recs, err := store.Append(context.Background(), eventstore.DefaultChain, drafts...)
	if err != nil {
		b.Fatal(err)
	}
	aux, err := store.Aux(replay.Namespace(eventstore.DefaultChain))
	if err != nil {
		b.Fatal(err)
	}
	snaps := replay.OpenSnapshots(store, eventstore.DefaultChain, aux)

	var peakHeap, peakRSS, allocs, size float64
	i := 0
	for b.Loop() {
		b.StopTimer()
		frozen := state.FrozenCopy()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		heap0, rss0 := heapObjects(), procStatus("VmRSS")
		stop, peak, rss := sample()
		b.StartTimer()

		r := recs[i%len(recs)]
		i++
		stored, err := snaps.Save(eventstore.Head{Seq: r.Seq, Hash: r.Hash}, frozen)
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		stop()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peakHeap = max(peakHeap, float64(*peak-heap0))
		peakRSS = max(peakRSS, float64(*rss)-float64(rss0))
		allocs += float64(after.TotalAlloc - before.TotalAlloc)
		size = float64(stored)
		b.StartTimer()
	}
	b.ReportMetric(size/(1<<20), "snapshot-MiB")
	b.ReportMetric(allocs/float64(b.N)/(1<<20), "alloc-MiB/op")
	b.ReportMetric(peakHeap/(1<<20), "peak-heap-MiB")
	if peakRSS > 0 {
		b.ReportMetric(peakRSS/(1<<20), "peak-rss-MiB")
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sample samples heapObjects (every 200 µs) and VmRSS (every 1 ms) until
// stop and returns their peaks.
func sample() (stop func(), heap, rss *uint64) {
	var h, r uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for i := 0; ; i++ {
			h = max(h, heapObjects())
			if i%5 == 0 {
				r = max(r, procStatus("VmRSS"))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		h, r = max(h, heapObjects()), max(r, procStatus("VmRSS"))
	}, &h, &r
}

// procStatus returns a field of /proc/self/status in bytes (0 if absent).
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
