// Package eventstoretest is the contract suite of eventstore.Log: the
// behaviours that the write side, the read side and verify rely on, run
// against any implementation. Every Log implementation calls TestLog from
// its own tests, as watermill's Pub/Subs call tests.TestPubSub.
package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// Opener opens a fresh, empty, writable Log for one test and returns it
// with reopen, which closes nothing but opens the same records again after
// the test closed the first Log (a process restart). The suite closes
// every Log it gets; the Opener registers any further cleanup with t.
type Opener func(t *testing.T) (log eventstore.Log, reopen func() eventstore.Log)

// TestLog runs every contract case against logs from open, each as a
// parallel subtest.
func TestLog(t *testing.T, open Opener) {
	t.Helper()
	for _, c := range append(cases[:len(cases):len(cases)], treeCases...) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, reopen := open(t)
			t.Cleanup(func() { _ = log.Close() })
			c.run(t, log, func() eventstore.Log {
				l := reopen()
				t.Cleanup(func() { _ = l.Close() })
				return l
			})
		})
	}
}

// Draft returns a distinct draft numbered i.
func Draft(i int) eventstore.Draft {
	return eventstore.Draft{Type: "test.appended", Actor: "system:test", Payload: fmt.Appendf(nil, `{"i":%d}`, i)}
}

// All returns every durable record of chain.
func All(t *testing.T, log eventstore.Log, chain string) []eventstore.Record {
	t.Helper()
	var out []eventstore.Record
	require.NoError(t, log.Records(context.Background(), chain, 1, 0, func(r eventstore.Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// requireChained checks the chain rules of the Log doc over recs, which
// start at genesis.
func requireChained(t *testing.T, chain string, recs []eventstore.Record) {
	t.Helper()
	prev, last := eventstore.GenesisPrevHash(), time.Time{}
	for i, r := range recs {
		require.Equal(t, uint64(i+1), r.Seq, "seqs are contiguous from 1")
		require.Equal(t, chain, r.Chain)
		require.Equal(t, prev, r.PrevHash, "record %d links to its predecessor", r.Seq)
		require.Equal(t, r.ComputeHash(), r.Hash, "record %d hash", r.Seq)
		require.Equal(t, eventstore.HashVersion, r.HashVersion)
		require.Len(t, r.ID, 26)
		require.False(t, r.Time.Before(last), "record %d time decreases", r.Seq)
		prev, last = r.Hash, r.Time
	}
}

type logCase struct {
	name string
	run  func(t *testing.T, log eventstore.Log, reopen func() eventstore.Log)
}

var cases = []logCase{
	{"append assigns contiguous seqs and links hashes", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		ctx := context.Background()
		first, err := log.Append(ctx, eventstore.DefaultChain, Draft(1))
		require.NoError(t, err)
		rest, err := log.Append(ctx, eventstore.DefaultChain, Draft(2), Draft(3))
		require.NoError(t, err)
		recs := append(first, rest...)
		require.Len(t, recs, 3)
		requireChained(t, eventstore.DefaultChain, recs)
		head, err := log.Head(eventstore.DefaultChain)
		require.NoError(t, err)
		assert.Equal(t, eventstore.Head{Seq: 3, Hash: recs[2].Hash}, head)
	}},
	{"an empty chain has the zero head", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		head, err := log.Head("never-written")
		require.NoError(t, err)
		assert.Equal(t, eventstore.Head{}, head)
		assert.Empty(t, All(t, log, "never-written"))
	}},
	{"records read back byte for byte", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		ctx := context.Background()
		var want []eventstore.Record
		for i := range 5 {
			r, err := log.Append(ctx, eventstore.DefaultChain, eventstore.Draft{
				Time: time.Date(2026, 1, 2, 3, 4, 5, 6+i, time.UTC), Type: "t", Actor: "a", Payload: []byte{0, 1, byte(i), 0xff},
			})
			require.NoError(t, err)
			want = append(want, r...)
		}
		assert.Equal(t, want, All(t, log, eventstore.DefaultChain))
		got, err := log.Get(ctx, eventstore.DefaultChain, 3)
		require.NoError(t, err)
		assert.Equal(t, want[2], got)
		for _, seq := range []uint64{0, 6} {
			_, err = log.Get(ctx, eventstore.DefaultChain, seq)
			require.ErrorIs(t, err, eventstore.ErrNotFound, "seq %d", seq)
		}
	}},
	{"scan bounds are inclusive and stored bytes parse", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		for i := range 10 {
			_, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(i))
			require.NoError(t, err)
		}
		var seqs []uint64
		require.NoError(t, log.Scan(context.Background(), eventstore.DefaultChain, 4, 6, func(seq uint64, stored []byte) error {
			v, err := eventstore.ParseStored(stored)
			require.NoError(t, err)
			require.Equal(t, seq, v.Seq)
			seqs = append(seqs, seq)
			return nil
		}))
		assert.Equal(t, []uint64{4, 5, 6}, seqs)
		var n int
		require.NoError(t, log.Records(context.Background(), eventstore.DefaultChain, 8, 0, func(eventstore.Record) error { n++; return nil }))
		assert.Equal(t, 3, n, "to 0 means no upper bound")
	}},
	{"an error from the callback stops the scan and is returned", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		_, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(1), Draft(2), Draft(3))
		require.NoError(t, err)
		stop := errors.New("stop here")
		var seen int
		err = log.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(eventstore.Record) error {
			seen++
			return stop
		})
		require.ErrorIs(t, err, stop)
		assert.Equal(t, 1, seen)
	}},
	{"reopen continues the chain", func(t *testing.T, log eventstore.Log, reopen func() eventstore.Log) {
		ctx := context.Background()
		before, err := log.Append(ctx, eventstore.DefaultChain, Draft(1), Draft(2))
		require.NoError(t, err)
		require.NoError(t, log.Close())
		log = reopen()
		head, err := log.Head(eventstore.DefaultChain)
		require.NoError(t, err)
		assert.Equal(t, eventstore.Head{Seq: 2, Hash: before[1].Hash}, head)
		after, err := log.Append(ctx, eventstore.DefaultChain, Draft(3))
		require.NoError(t, err)
		assert.Equal(t, uint64(3), after[0].Seq)
		assert.Equal(t, before[1].Hash, after[0].PrevHash)
		assert.Equal(t, append(before, after...), All(t, log, eventstore.DefaultChain))
	}},
	{"time never decreases along a chain", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		late := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		recs, err := log.Append(context.Background(), eventstore.DefaultChain,
			eventstore.Draft{Time: late, Type: "t"}, eventstore.Draft{Time: late.Add(-time.Hour), Type: "t"})
		require.NoError(t, err)
		assert.Equal(t, late, recs[1].Time)
	}},
	{"chains are independent and names are checked", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		a, err := log.Append(context.Background(), "tenant-a", Draft(1))
		require.NoError(t, err)
		b, err := log.Append(context.Background(), "tenant-b", Draft(1), Draft(2))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), a[0].Seq)
		assert.Equal(t, uint64(1), b[0].Seq)
		requireChained(t, "tenant-a", All(t, log, "tenant-a"))
		requireChained(t, "tenant-b", All(t, log, "tenant-b"))
		assert.Len(t, All(t, log, "tenant-a"), 1)
		_, err = log.Append(context.Background(), "Bad Chain", Draft(1))
		require.Error(t, err)
		require.Error(t, eventstore.ValidateChain("Bad Chain"))
	}},
	{"empty append is refused", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		_, err := log.Append(context.Background(), eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrEmptyAppend)
		_, err = log.Enqueue(context.Background(), eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrEmptyAppend)
	}},
	{"a closed log refuses everything and close is idempotent", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		_, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(1))
		require.NoError(t, err)
		require.NoError(t, log.Close())
		require.NoError(t, log.Close())
		_, err = log.Append(context.Background(), eventstore.DefaultChain, Draft(2))
		require.ErrorIs(t, err, eventstore.ErrClosed)
		_, err = log.Head(eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrClosed)
		_, err = log.Get(context.Background(), eventstore.DefaultChain, 1)
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}},
	{"close commits what is queued", func(t *testing.T, log eventstore.Log, reopen func() eventstore.Log) {
		var pendings []*eventstore.Pending
		for i := range 100 {
			p, err := log.Enqueue(context.Background(), eventstore.DefaultChain, Draft(i))
			require.NoError(t, err)
			pendings = append(pendings, p)
		}
		require.NoError(t, log.Close())
		for _, p := range pendings {
			_, err := p.Wait(context.Background())
			require.NoError(t, err)
		}
		assert.Len(t, All(t, reopen(), eventstore.DefaultChain), 100)
	}},
	{"enqueue order is call order and Wait returns the sequenced records", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		var ps []*eventstore.Pending
		for i := range 200 {
			p, err := log.Enqueue(context.Background(), eventstore.DefaultChain, Draft(i))
			require.NoError(t, err)
			require.Equal(t, uint64(i+1), p.Records()[0].Seq)
			ps = append(ps, p)
		}
		for i, p := range ps {
			recs, err := p.Wait(context.Background())
			require.NoError(t, err)
			require.Equal(t, p.Records(), recs)
			assert.Equal(t, fmt.Sprintf(`{"i":%d}`, i), string(recs[0].Payload))
		}
	}},
	{"reads show only durable records", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		// Whatever a reader sees while appends run is a durable prefix:
		// at or below the head read right after, and chained.
		ctx := context.Background()
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(done)
			for i := range 300 {
				if _, err := log.Append(ctx, eventstore.DefaultChain, Draft(i)); !assert.NoError(t, err) {
					return
				}
			}
		})
		defer wg.Wait() // also when a check below fails: the writer reports before the test ends
		for {
			seen := All(t, log, eventstore.DefaultChain)
			head, err := log.Head(eventstore.DefaultChain)
			require.NoError(t, err)
			require.LessOrEqual(t, uint64(len(seen)), head.Seq)
			requireChained(t, eventstore.DefaultChain, seen)
			select {
			case <-done:
				require.Len(t, All(t, log, eventstore.DefaultChain), 300)
				return
			default:
			}
		}
	}},
	{"concurrent appends get distinct contiguous seqs", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		const writers, each = 32, 25
		var mu sync.Mutex
		got := map[uint64]string{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					recs, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(w*1000+i), Draft(w*1000+i+500))
					if !assert.NoError(t, err) {
						return
					}
					assert.Equal(t, recs[0].Seq+1, recs[1].Seq, "one call's records are contiguous")
					mu.Lock()
					for _, r := range recs {
						got[r.Seq] = string(r.Payload)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		recs := All(t, log, eventstore.DefaultChain)
		require.Len(t, recs, 2*writers*each)
		requireChained(t, eventstore.DefaultChain, recs)
		for _, r := range recs {
			require.Equal(t, got[r.Seq], string(r.Payload), "seq %d is what its caller was told", r.Seq)
		}
	}},
	{"a cancelled context is returned", func(t *testing.T, log eventstore.Log, _ func() eventstore.Log) {
		_, err := log.Append(context.Background(), eventstore.DefaultChain, Draft(1))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = log.Get(ctx, eventstore.DefaultChain, 1)
		require.ErrorIs(t, err, context.Canceled)
	}},
}
