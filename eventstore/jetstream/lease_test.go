package jetstream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/eventstore/jetstream"
)

// sequenced is a Log with a Sequencer, and the Prepare calls it saw.
type sequenced struct {
	*jetstream.Log
	seq *jetstream.Sequencer

	mu       sync.Mutex
	prepared []bool // fencedSince of each Prepare
}

func (s *sequenced) prepare(_ context.Context, _ string, fenced bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared = append(s.prepared, fenced)
	return nil
}

// startSequenced opens a Log on its own folder and runs a Sequencer named
// name on it, with leases in bucket.
func startSequenced(t *testing.T, n node, name, bucket string, ttl time.Duration) *sequenced {
	t.Helper()
	return startAnchored(t, n, name, bucket, ttl, "", eventstore.DefaultChain)
}

// startAnchored is startSequenced with LeaseOptions.Anchor and the chains
// registered.
func startAnchored(t *testing.T, n node, name, bucket string, ttl time.Duration, anchor string, chains ...string) *sequenced {
	t.Helper()
	s := &sequenced{Log: n.open()}
	var err error
	s.seq, err = s.StartSequencer(context.Background(), jetstream.LeaseOptions{Node: name, URL: "http://" + name + ".test:8080",
		Bucket: bucket, NodesBucket: bucket + "_NODES", TTL: ttl, Prepare: s.prepare, Anchor: anchor})
	require.NoError(t, err)
	t.Cleanup(func() { s.seq.Close(); _ = s.Close() })
	for _, c := range chains {
		s.seq.Register(c)
	}
	return s
}

// TestSequencerAnchorKeepsChainsOnOneNode: with an anchor chain, the node
// that holds the anchor's lease sequences every chain and the other none;
// when the holder loses the anchor's lease (deleted behind its back, as if
// it had expired while the node stalled) it gives the other chains up, and
// the other node ends up sequencing all of them.
func TestSequencerAnchorKeepsChainsOnOneNode(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	signer := eventstoretest.NewSigner(t, "custos.test/js")
	stream := newStream()
	bucket := "L" + stream
	chains := []string{"system", "acme", "acme2"}
	mk := func(name string) *sequenced {
		return startAnchored(t, node{t: t, nc: nc, stream: stream, dir: t.TempDir(), signer: signer}, name, bucket, time.Second, "system", chains...)
	}
	a, b := mk("a"), mk("b")
	// allOn waits until one node sequences every chain and the other none.
	allOn := func(msg string) (*sequenced, *sequenced) {
		t.Helper()
		var holder, other *sequenced
		require.Eventually(t, func() bool {
			for _, pair := range [][2]*sequenced{{a, b}, {b, a}} {
				all, none := true, true
				for _, c := range chains {
					all = all && pair[0].seq.Sequencing(c)
					none = none && !pair[1].seq.Sequencing(c)
				}
				if all && none {
					holder, other = pair[0], pair[1]
					return true
				}
			}
			return false
		}, 15*time.Second, 5*time.Millisecond, msg)
		return holder, other
	}
	holder, other := allOn("one node sequences every chain")
	ctx := context.Background()
	for _, c := range chains {
		_, err := holder.Append(ctx, c, eventstoretest.Draft(1))
		require.NoError(t, err, "chain %s", c)
		_, err = other.Append(ctx, c, eventstoretest.Draft(2))
		require.ErrorIs(t, err, jetstream.ErrNotSequencer, "chain %s", c)
	}

	js, err := natsjs.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, bucket)
	require.NoError(t, err)
	// A third node takes the anchor's lease behind the holder's back: the
	// holder loses it at its next renewal and gives up the other chains
	// too, and neither node takes any chain while the anchor is another's.
	require.NoError(t, kv.Delete(ctx, "system"))
	_, err = kv.Create(ctx, "system", []byte(`{"node":"z","url":"http://z.test:8080"}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, n := range []*sequenced{a, b} {
			for _, c := range chains {
				if n.seq.Sequencing(c) {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "no node sequences any chain while a third holds the anchor")
	for _, c := range chains[1:] {
		h, _, ok := a.seq.Holder(c)
		require.False(t, ok && h.Node != "z", "chain %s's lease was given up, not kept: %+v", c, h)
	}
	// The third node's lease expires (TTL 1 s; no one renews it).
	next, _ := allOn("once the anchor is free, one node sequences every chain again")
	for _, c := range chains {
		waitApplied(t, next.Log, c, 1)
		recs, err := next.Append(ctx, c, eventstoretest.Draft(3))
		require.NoError(t, err, "chain %s", c)
		require.Equal(t, uint64(2), recs[0].Seq, "chain %s goes on where it was", c)
	}
}

// holderOf waits until exactly one of nodes sequences chain and returns it.
func holderOf(t *testing.T, nodes ...*sequenced) *sequenced {
	t.Helper()
	var got *sequenced
	require.Eventually(t, func() bool {
		got = nil
		for _, n := range nodes {
			if n.seq.Sequencing(eventstore.DefaultChain) {
				if got != nil {
					return false
				}
				got = n
			}
		}
		return got != nil
	}, 10*time.Second, 5*time.Millisecond, "one node sequences the chain")
	return got
}

// TestSequencerOneNodeAtATime: of two nodes exactly one sequences the
// chain, the other refuses appends and names the holder; when the holder
// closes, the other takes over and the chain goes on where it was.
func TestSequencerOneNodeAtATime(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	signer := eventstoretest.NewSigner(t, "custos.test/js")
	stream := newStream()
	bucket := "L" + stream
	mk := func(name string) *sequenced {
		return startSequenced(t, node{t: t, nc: nc, stream: stream, dir: t.TempDir(), signer: signer}, name, bucket, time.Second)
	}
	a, b := mk("a"), mk("b")
	first := holderOf(t, a, b)
	other := b
	if first == b {
		other = a
	}
	ctx := context.Background()
	recs, err := first.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(1))
	require.NoError(t, err)
	_, err = other.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(2))
	require.ErrorIs(t, err, jetstream.ErrNotSequencer)
	require.ErrorIs(t, err, eventstore.ErrFenced)
	h, local, ok := other.seq.Holder(eventstore.DefaultChain)
	require.True(t, ok)
	require.False(t, local)
	require.Equal(t, first.seq.Node(), h.Node)
	require.Equal(t, "http://"+first.seq.Node()+".test:8080", h.URL)

	waitApplied(t, other.Log, eventstore.DefaultChain, 1)
	first.seq.Close()
	require.Eventually(t, func() bool { return other.seq.Sequencing(eventstore.DefaultChain) }, 5*time.Second, 5*time.Millisecond,
		"the other node takes over once the holder gave the lease up")
	more, err := other.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(3))
	require.NoError(t, err)
	require.Equal(t, recs[0].Seq+1, more[0].Seq)
	require.Equal(t, recs[0].Hash, more[0].PrevHash)

	reports, err := other.seq.Nodes(ctx)
	require.NoError(t, err)
	var names []string
	for _, r := range reports {
		names = append(names, r.Node)
	}
	require.Contains(t, names, other.seq.Node(), "the node reports its progress")
	require.NotContains(t, names, first.seq.Node(), "a closed node withdraws its report")
}

// TestSequencerOverlapOneBatchWins forces two nodes to sequence the chain
// at once (the lease is deleted behind the holder's back, as if it had
// expired while the holder stalled, and the other node takes it) and has
// both append concurrently: each round at most one batch lands, the loser
// is refused whole (ErrNotSequencer) and steps down, the chain has no fork
// and every acknowledged record is in it at its seq.
func TestSequencerOverlapOneBatchWins(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	signer := eventstoretest.NewSigner(t, "custos.test/js")
	stream := newStream()
	bucket := "L" + stream
	ctx := context.Background()
	// A long TTL: the first holder renews only every 10 s, so it keeps
	// believing it sequences while the other one does too.
	const ttl = 30 * time.Second
	a := startSequenced(t, node{t: t, nc: nc, stream: stream, dir: t.TempDir(), signer: signer}, "a", bucket, ttl)
	holderOf(t, a)
	_, err := a.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(0))
	require.NoError(t, err)
	b := startSequenced(t, node{t: t, nc: nc, stream: stream, dir: t.TempDir(), signer: signer}, "b", bucket, ttl)
	waitApplied(t, b.Log, eventstore.DefaultChain, 1)

	js, err := natsjs.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, bucket)
	require.NoError(t, err)
	require.NoError(t, kv.Delete(ctx, eventstore.DefaultChain))
	require.Eventually(t, func() bool {
		return a.seq.Sequencing(eventstore.DefaultChain) && b.seq.Sequencing(eventstore.DefaultChain)
	}, 10*time.Second, 5*time.Millisecond, "both nodes sequence the chain at once")

	type answer struct {
		recs []eventstore.Record
		err  error
	}
	var won []eventstore.Record
	refused := map[string]int{}
	for round := range 20 {
		var wg sync.WaitGroup
		answers := make([]answer, 2)
		for i, n := range []*sequenced{a, b} {
			wg.Go(func() {
				recs, err := n.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(1000*i+round), eventstoretest.Draft(1000*i+round+500))
				answers[i] = answer{recs, err}
			})
		}
		wg.Wait()
		for i, an := range answers {
			if an.err != nil {
				require.ErrorIs(t, an.err, jetstream.ErrNotSequencer, "round %d node %d", round, i)
				refused[fmt.Sprint(i)]++
				continue
			}
			won = append(won, an.recs...)
		}
		for _, n := range []*sequenced{a, b} {
			waitApplied(t, n.Log, eventstore.DefaultChain, uint64(1+len(won)))
		}
	}
	require.NotEmpty(t, refused, "the nodes raced")
	require.NotEmpty(t, won)
	requireSame(t, a.Log, b.Log, eventstore.DefaultChain)
	all := eventstoretest.All(t, a.Log, eventstore.DefaultChain)
	require.Len(t, all, 1+len(won), "only acknowledged records were appended")
	for _, r := range won {
		require.Equal(t, r, all[r.Seq-1])
	}
	// The node that lost a race saw its lease taken and stepped down; a
	// node that was refused and still holds the lease prepared again
	// knowing it was fenced.
	holder := holderOf(t, a, b)
	holder.mu.Lock()
	defer holder.mu.Unlock()
	require.NotEmpty(t, holder.prepared)
	require.False(t, holder.prepared[0], "the first Prepare follows no fence")
}
