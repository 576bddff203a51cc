package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/eventstore/jetstream"
)

// BenchmarkAppend measures durable appends of one record from many
// goroutines (group commit) on a Pebble store alone, and on a JetStream
// log over one in-process server (R1) and over three (R3), every server
// with sync always. Run: go test ./eventstore/jetstream -run - -bench Append -cpu 2
func BenchmarkAppend(b *testing.B) {
	run := func(b *testing.B, log eventstore.Log) {
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := log.Append(context.Background(), eventstore.DefaultChain, eventstoretest.Draft(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("pebble", func(b *testing.B) {
		s, err := eventstore.Open(eventstore.Options{Dir: b.TempDir(), CreateIfMissing: true})
		require.NoError(b, err)
		defer s.Close()
		run(b, s)
	})
	b.Run("jetstream-r1", func(b *testing.B) {
		s, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Name: "solo", Dir: b.TempDir()})
		require.NoError(b, err)
		defer func() { s.Shutdown(); s.WaitForShutdown() }()
		n := node{t: b, nc: connect(b, s.ClientURL()), stream: newStream(), dir: b.TempDir(), reps: 1}
		l := n.open()
		defer l.Close()
		run(b, l)
	})
	b.Run("jetstream-r3", func(b *testing.B) {
		servers := cluster(b)
		n := node{t: b, nc: connect(b, servers[0].ClientURL()), stream: newStream(), dir: b.TempDir(), reps: 3,
			check: jetstream.EmbeddedSyncCheck(servers...)}
		var l *jetstream.Log
		require.Eventually(b, func() bool {
			var err error
			l, err = n.tryOpen()
			return err == nil
		}, 20*time.Second, 100*time.Millisecond)
		defer l.Close()
		run(b, l)
	})
}
