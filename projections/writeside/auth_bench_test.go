package writeside_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

// BenchmarkAuthenticate measures the per-request hot path of every keyed
// request with 10,000 keys: format and checksum, SHA-256, the lock-free
// cache, the active check.
func BenchmarkAuthenticate(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: "/b", FS: vfs.NewMem(), CreateIfMissing: true, Logger: quiet})
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })
	l, err := writeside.Open(context.Background(), writeside.Config{Store: store, Logger: quiet, SnapshotEvery: writeside.NoSnapshots})
	require.NoError(b, err)
	b.Cleanup(func() { _ = l.Close() })
	plains := make([][]string, 16)
	var wg sync.WaitGroup
	for w := range plains { // 16 writers share fsyncs
		wg.Go(func() {
			for range 625 {
				_, p, _, err := l.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "k", Scope: "evaluate"})
				if err != nil {
					b.Error(err)
					return
				}
				plains[w] = append(plains[w], p)
			}
		})
	}
	wg.Wait()
	plain := plains[0][300]
	bad := plain[:len(plain)-1] + "x"
	if bad == plain {
		bad = plain[:len(plain)-1] + "y"
	}
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Authenticate(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bad checksum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Authenticate(bad); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
