package writeside_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/replay"
	"github.com/custos-dev/custos/projections/writeside"
)

type fixture struct {
	t     *testing.T
	store *eventstore.Store
	gen   *mixGen
	clock atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return &fixture{t: t, store: store, gen: newMixGen(eventstoretest.Seed(t), 40)}
}

// open opens a Ledger that logs to sink (if not nil) and closes it at the
// end of the test, before the store.
func (f *fixture) open(every int, sink *eventstoretest.LogSink) *writeside.Ledger {
	f.t.Helper()
	var h slog.Handler = slog.DiscardHandler
	if sink != nil {
		h = sink
	}
	l, err := writeside.Open(context.Background(), writeside.Config{
		Store: f.store, SnapshotEvery: every, Logger: slog.New(h),
		Clock: func() time.Time { return time.Unix(1_900_000_000+f.clock.Add(1), 0) },
	})
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = l.Close() })
	return l
}

// write writes n events through l, 1 to perWrite in each Write.
func (f *fixture) write(l *writeside.Ledger, n, perWrite int) {
	f.t.Helper()
	for n > 0 {
		k := min(n, 1+f.gen.rng.IntN(perWrite))
		f.writeOnce(l, k)
		n -= k
	}
}

// writeOnce writes n events in one Write and waits for the snapshot it may
// have started, so that snapshots land exactly where they are due.
func (f *fixture) writeOnce(l *writeside.Ledger, n int) {
	f.t.Helper()
	evs := make([]domain.Event, n)
	for i := range evs {
		evs[i] = f.gen.next()
	}
	_, err := l.Write(context.Background(), "system:test", func(*writeside.Tx) ([]domain.Event, error) { return evs, nil })
	require.NoError(f.t, err)
	l.WaitSnapshot()
}

func snapshotOf(t *testing.T, l *writeside.Ledger) []byte {
	t.Helper()
	var b []byte
	var err error
	l.Read(func(s *domain.State) { b, err = s.MarshalSnapshot() })
	require.NoError(t, err)
	return b
}

// requireSameState compares two Ledgers' observable reads and their
// snapshot encodings (which cover every field, see the domain tests).
func requireSameState(t *testing.T, g *mixGen, want, got *writeside.Ledger) {
	t.Helper()
	want.Read(func(w *domain.State) {
		got.Read(func(s *domain.State) {
			require.Equal(t, w.Keys.List(), s.Keys.List())
			for id, h := range g.hashes {
				wk, wok := w.Keys.ByHash(h)
				gk, gok := s.Keys.ByHash(h)
				require.Equal(t, wok, gok, id)
				require.Equal(t, wk, gk, id)
			}
			require.Equal(t, w.Policies.List(), s.Policies.List())
			require.Equal(t, w.Policies.Set().All(), s.Policies.Set().All())
			require.Equal(t, w.Agents.List(agents.Filter{AllStatuses: true}), s.Agents.List(agents.Filter{AllStatuses: true}))
			require.Equal(t, w.Sessions.Len(), s.Sessions.Len())
			for i := range g.sessions {
				id := sessionID(i)
				ws, wok := w.Sessions.Get(id)
				gs, gok := s.Sessions.Get(id)
				require.Equal(t, wok, gok, id)
				require.Equal(t, ws, gs, id)
			}
		})
	})
	require.True(t, bytes.Equal(snapshotOf(t, want), snapshotOf(t, got)), "snapshot encodings differ")
}

func snapAux(t *testing.T, store *eventstore.Store) *eventstore.Aux {
	aux, err := store.Aux("snap-" + eventstore.DefaultChain)
	require.NoError(t, err)
	return aux
}

// storedSnapshots returns the seqs that have a stored snapshot (a chunk 0).
func storedSnapshots(t *testing.T, store *eventstore.Store) []uint64 {
	t.Helper()
	var seqs, listed []uint64
	require.NoError(t, snapAux(t, store).Scan(context.Background(), nil, nil, func(key, _ []byte) error {
		switch key[0] {
		case 'c':
			if binary.BigEndian.Uint32(key[9:]) == 0 {
				seqs = append(seqs, binary.BigEndian.Uint64(key[1:]))
			}
		case 'i':
			listed = append(listed, binary.BigEndian.Uint64(key[1:]))
		}
		return nil
	}))
	require.Equal(t, seqs, listed, "every snapshot is listed")
	return seqs
}

func putSnapshotValue(t *testing.T, store *eventstore.Store, seq uint64, value []byte) {
	t.Helper()
	require.NoError(t, replay.StoreEnvelope(snapAux(t, store), seq, value))
}

func getSnapshotValue(t *testing.T, store *eventstore.Store, seq uint64) []byte {
	t.Helper()
	v, err := replay.StoredEnvelope(context.Background(), snapAux(t, store), seq)
	require.NoError(t, err)
	return v
}

// Snapshots land at the end of the first Write that reaches the next due
// seq: the next multiple of N while the state has at most N entries, else
// as many events after the last snapshot as the state has entries (so that snapshot work per event stays bounded
// as the state grows). The Kept newest are kept, and one past the head is
// deleted by the next save.
func TestSnapshotsWrittenEveryNAndPruned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const every = 10
	l := f.open(every, nil)
	var want []uint64
	next := uint64(every)
	// writeOnce writes n events in one Write and adds the snapshot the
	// rule expects to want.
	writeOnce := func(n int) {
		t.Helper()
		f.writeOnce(l, n)
		head := l.Applied().Seq
		if head >= next {
			var entries int
			l.Read(func(s *domain.State) { entries = s.Entries() })
			want = append(want, head)
			if uint64(entries) > every {
				next = head + uint64(entries)
			} else {
				next = (head/every + 1) * every
			}
		}
	}
	for range 400 {
		writeOnce(1 + f.gen.rng.IntN(3))
	}
	kept := want[len(want)-replay.Kept:]
	require.Equal(t, kept, storedSnapshots(t, f.store))
	require.Greater(t, len(want), replay.Kept)
	var entries int
	l.Read(func(s *domain.State) { entries = s.Entries() })
	require.Greater(t, entries, every, "the state outgrew N, so later gaps are its size")
	for _, seq := range kept {
		head, _, err := replay.OpenEnvelope(getSnapshotValue(t, f.store, seq))
		require.NoError(t, err)
		rec, err := f.store.Get(context.Background(), eventstore.DefaultChain, seq)
		require.NoError(t, err)
		require.Equal(t, eventstore.Head{Seq: seq, Hash: rec.Hash}, head)
	}

	// A snapshot past the head (left by another history) is deleted by
	// the next save.
	putSnapshotValue(t, f.store, 100_000, getSnapshotValue(t, f.store, kept[0]))
	for before := len(want); len(want) == before; {
		writeOnce(1)
	}
	require.Equal(t, want[len(want)-replay.Kept:], storedSnapshots(t, f.store))
}

func TestSnapshotsOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.open(writeside.NoSnapshots, nil)
	f.write(l, 30, 3)
	require.Empty(t, storedSnapshots(t, f.store))
}

func TestOpenFromSnapshotEqualsFullReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	live := f.open(50, nil)
	f.write(live, 437, 7)
	require.NotEmpty(t, storedSnapshots(t, f.store))

	sink := &eventstoretest.LogSink{}
	fromSnap := f.open(50, sink)
	require.Equal(t, 1, sink.Count("snapshot restored"), sink.Lines())
	full := f.open(writeside.NoSnapshots, nil)
	requireSameState(t, f.gen, live, fromSnap)
	requireSameState(t, f.gen, full, fromSnap)

	// Go on writing through the restored Ledger; a later start (from a
	// newer snapshot, with a tail) still equals a full replay.
	require.NoError(t, live.Close())
	f.write(fromSnap, 263, 5)
	sink2 := &eventstoretest.LogSink{}
	again := f.open(50, sink2)
	require.Equal(t, 1, sink2.Count("snapshot restored"), sink2.Lines())
	requireSameState(t, f.gen, fromSnap, again)
	requireSameState(t, f.gen, f.open(writeside.NoSnapshots, nil), again)
}

// withSessionsVersion returns a copy of the encoded state with the version
// of its sessions part (the fourth, after keys, policies and agents) set to
// v: what a snapshot written by an older build looks like to this one.
func withSessionsVersion(t *testing.T, state []byte, v byte) []byte {
	t.Helper()
	b := append([]byte(nil), state...)
	_, off := binary.Uvarint(b) // the state version
	for range 3 {
		size, n := binary.Uvarint(b[off:])
		require.Positive(t, n)
		off += n + int(size)
	}
	_, n := binary.Uvarint(b[off:]) // the size of the sessions part
	require.Positive(t, n)
	off += n
	require.Equal(t, byte(decision.SnapshotVersion), b[off], "the sessions part starts with its version")
	b[off] = v
	return b
}

func TestOpenIgnoresBadSnapshots(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// spoil changes the stored value of the snapshot at seq.
		spoil func(t *testing.T, f *fixture, seq uint64, value []byte) []byte
	}{
		{"flipped header byte", func(_ *testing.T, _ *fixture, _ uint64, v []byte) []byte { v[3] ^= 1; return v }},
		{"flipped state byte", func(_ *testing.T, _ *fixture, _ uint64, v []byte) []byte { v[len(v)/2] ^= 0x40; return v }},
		{"flipped checksum byte", func(_ *testing.T, _ *fixture, _ uint64, v []byte) []byte { v[len(v)-1] ^= 0x80; return v }},
		{"truncated", func(_ *testing.T, _ *fixture, _ uint64, v []byte) []byte { return v[:len(v)-10] }},
		{"hash does not match the chain", func(t *testing.T, _ *fixture, _ uint64, v []byte) []byte {
			head, body, err := replay.OpenEnvelope(v)
			require.NoError(t, err)
			head.Hash[0] ^= 1
			return replay.SealEnvelope(head, body)
		}},
		{"seq past the head", func(t *testing.T, f *fixture, seq uint64, v []byte) []byte {
			head, body, err := replay.OpenEnvelope(v)
			require.NoError(t, err)
			head.Seq = 10_000
			putSnapshotValue(t, f.store, head.Seq, replay.SealEnvelope(head, body))
			return v[:1] // and spoil the original
		}},
		{"state that does not decode", func(t *testing.T, _ *fixture, _ uint64, v []byte) []byte {
			head, body, err := replay.OpenEnvelope(v)
			require.NoError(t, err)
			return replay.SealEnvelope(head, body[:len(body)-1])
		}},
		{"sessions of an older format", func(t *testing.T, _ *fixture, _ uint64, v []byte) []byte {
			head, body, err := replay.OpenEnvelope(v)
			require.NoError(t, err)
			return replay.SealEnvelope(head, withSessionsVersion(t, body, decision.SnapshotVersion-1))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			live := f.open(40, nil)
			f.write(live, 130, 3)
			seqs := storedSnapshots(t, f.store)
			require.Len(t, seqs, 3)

			// Spoil the newest: Open falls back to the next older one.
			newest := seqs[2]
			putSnapshotValue(t, f.store, newest, tc.spoil(t, f, newest, getSnapshotValue(t, f.store, newest)))
			sink := &eventstoretest.LogSink{}
			l := f.open(40, sink)
			require.GreaterOrEqual(t, sink.Count("ignoring snapshot"), 1, sink.Lines())
			require.Equal(t, 1, sink.Count("snapshot restored chain=default seq="+itoa(seqs[1])+" "), sink.Lines())
			requireSameState(t, f.gen, live, l)
			// That Open saved a snapshot at the head (it replayed more than N
			// events); spoil it too.
			l.WaitSnapshot()
			now := storedSnapshots(t, f.store)
			require.Equal(t, []uint64{seqs[1], seqs[2], 130}, now, "the oldest was pruned")

			// Spoil them all: Open replays the whole chain.
			for _, seq := range []uint64{seqs[1], 130} { // seqs[2] is spoiled already
				putSnapshotValue(t, f.store, seq, tc.spoil(t, f, seq, getSnapshotValue(t, f.store, seq)))
			}
			sink = &eventstoretest.LogSink{}
			l = f.open(40, sink)
			require.Equal(t, 0, sink.Count("snapshot restored"), sink.Lines())
			require.GreaterOrEqual(t, sink.Count("ignoring snapshot"), 3, sink.Lines())
			requireSameState(t, f.gen, live, l)
			requireSameState(t, f.gen, f.open(writeside.NoSnapshots, nil), l)
		})
	}
}

// TestSnapshotWhileWriting writes from several goroutines with a small N
// (run with -race): snapshots are taken off the write lock while writes go
// on, and a start from the newest one equals a full replay.
func TestSnapshotWhileWriting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.open(25, nil)
	var mu sync.Mutex // the generator is not safe for concurrent use
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, err := l.Write(context.Background(), "system:test", func(*writeside.Tx) ([]domain.Event, error) {
					mu.Lock()
					defer mu.Unlock()
					return []domain.Event{f.gen.next()}, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, l.Close())
	require.NotEmpty(t, storedSnapshots(t, f.store))
	sink := &eventstoretest.LogSink{}
	restored := f.open(25, sink)
	require.Equal(t, 1, sink.Count("snapshot restored"), sink.Lines())
	requireSameState(t, f.gen, l, restored)
	requireSameState(t, f.gen, f.open(writeside.NoSnapshots, nil), restored)
}

// TestReplayAtUnaffectedBySnapshots checks that point-in-time answers do not
// depend on snapshots: ReplayAt folds the log through the index, never a
// snapshot, and gives the same tables whether or not snapshots were saved
// next to it, and the same as the Ledger's live tables at the head.
func TestReplayAtUnaffectedBySnapshots(t *testing.T) {
	t.Parallel()
	build := func(every int) (*fixture, *writeside.Ledger, []time.Time) {
		f := newFixture(t)
		f.gen = newMixGen(99, 40) // both stores get the same events
		l := f.open(every, nil)
		var instants []time.Time
		for range 6 {
			f.write(l, 40, 4)
			head, err := f.store.Head(eventstore.DefaultChain)
			require.NoError(t, err)
			rec, err := f.store.Get(context.Background(), eventstore.DefaultChain, head.Seq)
			require.NoError(t, err)
			instants = append(instants, rec.Time)
		}
		return f, l, instants
	}
	on, onLedger, instants := build(30)
	off, offLedger, instantsOff := build(writeside.NoSnapshots)
	require.Equal(t, instants, instantsOff)
	require.NotEmpty(t, storedSnapshots(t, on.store))
	require.Empty(t, storedSnapshots(t, off.store))

	tables := func(s *domain.State) []any {
		return []any{s.Keys.List(), s.Policies.List(), s.Agents.List(agents.Filter{AllStatuses: true})}
	}
	asOf := func(f *fixture) [][]any {
		ix, err := readside.NewIndex(f.store, eventstore.DefaultChain, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		_, err = ix.CatchUp(context.Background())
		require.NoError(t, err)
		var out [][]any
		for _, at := range append([]time.Time{instants[0].Add(-time.Hour)}, instants...) {
			s, err := ix.ReplayAt(context.Background(), at)
			require.NoError(t, err)
			out = append(out, tables(s))
		}
		return out
	}
	answersOn, answersOff := asOf(on), asOf(off)
	require.Equal(t, answersOff, answersOn)
	for _, l := range []*writeside.Ledger{onLedger, offLedger, on.open(30, nil), off.open(writeside.NoSnapshots, nil)} {
		l.Read(func(s *domain.State) { require.Equal(t, answersOn[len(answersOn)-1], tables(s)) })
	}
}
