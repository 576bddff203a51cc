package jetstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/eventstore/jetstream"
)

// TestStreamLeaderLoss shuts down (in process, not a kill -9) the server
// that leads the stream (R3) while a node appends: appends fail retryably for a while, then resume, and every
// acknowledged record stays at its seq on both nodes.
func TestStreamLeaderLoss(t *testing.T) {
	servers := cluster(t)
	ctx := context.Background()
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	signer := eventstoretest.NewSigner(t, "custos.test/js")
	stream := newStream()
	opts := func(dir string) jetstream.Options {
		return jetstream.Options{Conn: nc, Stream: stream, Subjects: "custos." + stream, Replicas: 3,
			SyncChecked: jetstream.EmbeddedSyncCheck(servers...), AckTimeout: time.Second,
			Store: eventstore.Options{Dir: dir, CreateIfMissing: true, Signer: signer}}
	}
	var leader *jetstream.Log
	require.Eventually(t, func() bool {
		leader, err = jetstream.Open(ctx, opts(t.TempDir()))
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "open: %v", err)
	defer leader.Close()
	follower, err := jetstream.Open(ctx, opts(t.TempDir()))
	require.NoError(t, err)
	defer follower.Close()

	var acked []eventstore.Record
	appendOne := func(i int) error {
		recs, err := leader.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(i))
		if err == nil {
			acked = append(acked, recs...)
		}
		return err
	}
	for i := range 20 {
		require.NoError(t, appendOne(i))
	}
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var lost *server.Server
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			lost = s
		}
	}
	require.NotNil(t, lost, "stream leader %q", info.Cluster.Leader)
	lost.Shutdown()
	stopped := time.Now()
	i := 100
	for {
		err := appendOne(i)
		i++
		if err == nil {
			break
		}
		require.ErrorIs(t, err, eventstore.ErrFenced, "a failed append is retryable")
		require.Less(t, time.Since(stopped), 30*time.Second, "appends resume: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("appends resumed %s after the stream leader stopped", time.Since(stopped).Round(time.Millisecond))
	for range 10 {
		require.NoError(t, appendOne(i))
		i++
	}
	head, err := leader.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	// The follower's consumer may have lived on the lost server: it is
	// recreated after two missed heartbeats, and nats.go retries the
	// creation with a backoff while the cluster settles, so a follower
	// may lag for several seconds (docs/cluster.md, "Failover").
	began := time.Now()
	require.Eventually(t, func() bool {
		h, err := follower.Head(eventstore.DefaultChain)
		return err == nil && h.Seq >= head.Seq
	}, 60*time.Second, 5*time.Millisecond, "the follower applied through %d", head.Seq)
	t.Logf("the follower applied through %d %s after the leader's last append", head.Seq, time.Since(began).Round(time.Millisecond))
	requireSame(t, leader, follower, eventstore.DefaultChain)
	all := eventstoretest.All(t, leader, eventstore.DefaultChain)
	for _, r := range acked {
		require.Equal(t, r, all[r.Seq-1], "acknowledged record %d", r.Seq)
	}
}
