package keys_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain/keys"
)

// benchKeys is the number of keys BenchmarkGCWithKeys holds: the
// environment variable CUSTOS_BENCH_KEYS, or 100000.
func benchKeys(tb testing.TB) int {
	tb.Helper()
	v := os.Getenv("CUSTOS_BENCH_KEYS")
	if v == "" {
		return 100_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("CUSTOS_BENCH_KEYS=%q: want a count of keys", v)
	}
	return n
}

// foldKeys builds, through Apply, a State of n keys shaped like a large
// tenant's: every key used, a third bound to an agent, one in ten rotated
// (so one in ten revoked with a successor), one in ten revoked outright.
func foldKeys(tb testing.TB, n int) *keys.State {
	tb.Helper()
	s := &keys.State{}
	apply := func(ev keys.Event) {
		if err := s.Apply(ev); err != nil {
			tb.Fatal(err)
		}
	}
	created := func(i int) keys.KeyCreated {
		var seed [8]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		h := sha256.Sum256(seed[:])
		c := keys.KeyCreated{KeyID: keyID(i), Name: fmt.Sprintf("service-%d", i%997), Scope: keys.ScopeRead,
			Prefix: "cst_" + hex.EncodeToString(h[:3]), KeyHash: hex.EncodeToString(h[:]),
			CreatedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: t0.Add(365 * day)}
		if i%3 == 0 {
			c.Scope, c.AgentID = keys.ScopeEvaluate, fmt.Sprintf("agent-%d", i%1000)
		}
		return c
	}
	for i := 0; i < n; i++ {
		switch {
		case i%10 == 9:
			// i rotates key i-1.
			next := created(i)
			next.RotatedFrom = keyID(i - 1)
			apply(keys.KeyRotated{OldKeyID: keyID(i - 1), OldRevokedAt: t0.Add(400 * day), NewKey: next})
		default:
			apply(created(i))
		}
		if i%10 == 4 {
			apply(keys.KeyRevoked{KeyID: keyID(i), RevokedAt: t0.Add(100 * day)})
		}
		apply(keys.KeyUsed{KeyID: keyID(i), UsedAt: t0.Add(time.Duration(i)*time.Second + time.Minute)})
	}
	s.TakeChanged()
	return s
}

// scannable returns the heap bytes the garbage collector scans for
// pointers (runtime/metrics /gc/scan/heap:bytes), as of the last GC.
func scannable() uint64 {
	sample := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// BenchmarkGCWithKeys measures what a State of CUSTOS_BENCH_KEYS keys
// (default 100000) costs the garbage collector: the time of a full
// runtime.GC while it is live (ns/op), the live heap it adds per key
// (heap-B/key, HeapAlloc after a GC with and without it) and how much of
// that the collector must scan for pointers (scan-B/key, the same
// difference of /gc/scan/heap:bytes).
func BenchmarkGCWithKeys(b *testing.B) {
	n := benchKeys(b)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	scanBefore := scannable()
	s := foldKeys(b, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	scanAfter := scannable()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	if s.Len() != n {
		b.Fatalf("folded %d keys, want %d", s.Len(), n)
	}
	if n > 0 {
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-B/key")
		b.ReportMetric(float64(int64(scanAfter)-int64(scanBefore))/float64(n), "scan-B/key")
	}
	b.ReportMetric(float64(n), "keys")
	runtime.KeepAlive(s)
}
