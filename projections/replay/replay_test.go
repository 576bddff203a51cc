package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// keyState folds a state of n keys through Apply, starting at seq from.
func keyState(tb testing.TB, n, from int) *domain.State {
	tb.Helper()
	s := domain.NewState()
	var h [32]byte
	for i := range n {
		binary.BigEndian.PutUint64(h[:], uint64(from+i)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(h[8:], uint64(from+i))
		id := fmt.Sprintf("key_%026d", from+i)
		ev := keys.KeyCreated{KeyID: id, Name: "k", Scope: keys.ScopeEvaluate, Prefix: "cst_" + id[len(id)-6:],
			KeyHash: hex.EncodeToString(h[:]), CreatedAt: t0, ExpiresAt: t0.Add(365 * 24 * time.Hour)}
		if err := s.Apply(domain.Meta{Seq: uint64(i + 1), ID: fmt.Sprintf("01EV%022d", i+1), Time: t0}, ev); err != nil {
			tb.Fatal(err)
		}
	}
	s.Keys.TakeChanged()
	return s
}

type fixture struct {
	t     testing.TB
	store *eventstore.Store
	aux   *eventstore.Aux
	snaps *Snapshots
	heads []eventstore.Head // heads[seq-1]
}

// newFixture opens a store whose default chain has records records.
func newFixture(t testing.TB, records int) *fixture {
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	drafts := make([]eventstore.Draft, records)
	for i := range drafts {
		drafts[i] = eventstoretest.Draft(i)
	}
	recs, err := store.Append(context.Background(), eventstore.DefaultChain, drafts...)
	require.NoError(t, err)
	f := &fixture{t: t, store: store}
	for _, r := range recs {
		f.heads = append(f.heads, eventstore.Head{Seq: r.Seq, Hash: r.Hash})
	}
	f.aux, err = store.Aux(Namespace(eventstore.DefaultChain))
	require.NoError(t, err)
	f.snaps = OpenSnapshots(store, eventstore.DefaultChain, f.aux)
	return f
}

func (f *fixture) save(seq uint64, s *domain.State) int {
	f.t.Helper()
	n, err := f.snaps.Save(f.heads[seq-1], s)
	require.NoError(f.t, err)
	return n
}

// newest returns the seq Newest restores (0: none) and its state's
// encoding, and what it logged.
func (f *fixture) newest() (uint64, []byte, string) {
	f.t.Helper()
	sink := &eventstoretest.LogSink{}
	s, head, ok, err := f.snaps.Newest(context.Background(), time.Time{}, slog.New(sink))
	require.NoError(f.t, err)
	if !ok {
		return 0, nil, sink.Text()
	}
	b, err := s.MarshalSnapshot()
	require.NoError(f.t, err)
	return head.Seq, b, sink.Text()
}

// keysOf returns the stored keys of the namespace by kind and seq: for 'c'
// the chunk numbers, for 'i' and 's' one entry.
func (f *fixture) keysOf() map[byte]map[uint64][]uint32 {
	f.t.Helper()
	out := map[byte]map[uint64][]uint32{}
	require.NoError(f.t, f.aux.Scan(context.Background(), nil, nil, func(key, _ []byte) error {
		m := out[key[0]]
		if m == nil {
			m = map[uint64][]uint32{}
			out[key[0]] = m
		}
		seq := binary.BigEndian.Uint64(key[1:9])
		var n uint32
		if key[0] == chunkKey {
			n = binary.BigEndian.Uint32(key[9:])
		}
		m[seq] = append(m[seq], n)
		return nil
	}))
	return out
}

func encode(t testing.TB, s *domain.State) []byte {
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	return b
}

// chunksOf returns the chunk numbers stored at seq.
func (f *fixture) chunksOf(seq uint64) []uint32 { return f.keysOf()[chunkKey][seq] }

func TestSnapshotRoundTripInManyChunks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	state := keyState(t, 80_000, 0)
	want := encode(t, state)
	n := f.save(5, state)
	require.Equal(t, envelopeOverhead+len(want), n)
	chunks := chunkCount(n)
	require.Greater(t, chunks, chunksPerBatch, "more chunks than one batch holds: %d bytes", n)
	want0 := make([]uint32, chunks)
	for i := range want0 {
		want0[i] = uint32(i)
	}
	require.Equal(t, want0, f.chunksOf(5))
	seq, got, logged := f.newest()
	require.Equal(t, uint64(5), seq, logged)
	require.True(t, bytes.Equal(want, got), "restored state encodes differently")

	// The stored envelope is what SealEnvelope makes of the encoding.
	stored, err := StoredEnvelope(context.Background(), f.aux, 5)
	require.NoError(t, err)
	require.True(t, bytes.Equal(SealEnvelope(f.heads[4], want), stored))

	// A small state fits in one chunk; a save at the same seq replaces
	// the many chunks with it.
	small := keyState(t, 3, 0)
	f.save(5, small)
	require.Equal(t, []uint32{0}, f.chunksOf(5))
	seq, got, logged = f.newest()
	require.Equal(t, uint64(5), seq, logged)
	require.Equal(t, encode(t, small), got)
}

func TestSnapshotBadChunksSkipped(t *testing.T) {
	t.Parallel()
	big := keyState(t, 30_000, 0) // several chunks
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, f *fixture, seq uint64)
		err   string
	}{
		{"missing middle chunk", func(t *testing.T, f *fixture, seq uint64) {
			f.rawDelete(t, chunkKeyOf(seq, 2))
		}, "missing chunk 2 of"},
		{"missing last chunk", func(t *testing.T, f *fixture, seq uint64) {
			c := f.chunksOf(seq)
			f.rawDelete(t, chunkKeyOf(seq, c[len(c)-1]))
		}, "missing chunk"},
		{"missing first chunk", func(t *testing.T, f *fixture, seq uint64) {
			f.rawDelete(t, chunkKeyOf(seq, 0))
		}, "listed but missing"},
		{"extra chunk", func(t *testing.T, f *fixture, seq uint64) {
			c := f.chunksOf(seq)
			f.rawSet(t, chunkKeyOf(seq, c[len(c)-1]+1), []byte("more"))
		}, "extra chunk"},
		{"corrupted chunk byte", func(t *testing.T, f *fixture, seq uint64) {
			v := f.rawGet(t, chunkKeyOf(seq, 1))
			v[len(v)/3] ^= 0x10
			f.rawSet(t, chunkKeyOf(seq, 1), v)
		}, "checksum mismatch"},
		{"corrupted checksum", func(t *testing.T, f *fixture, seq uint64) {
			c := f.chunksOf(seq)
			last := chunkKeyOf(seq, c[len(c)-1])
			v := f.rawGet(t, last)
			v[len(v)-1] ^= 0x01
			f.rawSet(t, last, v)
		}, "checksum mismatch"},
		{"short chunk", func(t *testing.T, f *fixture, seq uint64) {
			v := f.rawGet(t, chunkKeyOf(seq, 1))
			f.rawSet(t, chunkKeyOf(seq, 1), v[:len(v)-1])
		}, "chunk 1 of"},
		{"header claims another count", func(t *testing.T, f *fixture, seq uint64) {
			v := f.rawGet(t, chunkKeyOf(seq, 0))
			v[headerSize-12+3]++
			f.rawSet(t, chunkKeyOf(seq, 0), v)
		}, "header claims"},
		{"older envelope version", func(t *testing.T, f *fixture, seq uint64) {
			// What an older build left: one value under 's', listed.
			f.rawDelete(t, chunkKeyOf(seq, 0))
			f.rawSet(t, snapKey(oldValueKey, seq), []byte{1, 2, 3})
		}, "envelope version 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 10)
			older := keyState(t, 5, 0)
			f.save(3, older)
			f.save(7, big)
			seq, _, logged := f.newest()
			require.Equal(t, uint64(7), seq, logged)
			tc.spoil(t, f, 7)
			seq, got, logged := f.newest()
			require.Equal(t, uint64(3), seq, logged)
			require.Equal(t, encode(t, older), got)
			require.Contains(t, logged, "ignoring snapshot")
			require.Contains(t, logged, tc.err)

			// With the older one spoilt too, Newest finds none (genesis).
			f.rawDelete(t, chunkKeyOf(3, 0))
			seq, _, logged = f.newest()
			require.Zero(t, seq, logged)
		})
	}
}

func (f *fixture) rawGet(t *testing.T, key []byte) []byte {
	t.Helper()
	v, ok, err := f.aux.Get(key)
	require.NoError(t, err)
	require.True(t, ok, "%x", key)
	return v
}

func (f *fixture) rawSet(t *testing.T, key, value []byte) {
	t.Helper()
	b, err := f.aux.NewBatch()
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Set(key, value))
	require.NoError(t, b.Commit())
}

func (f *fixture) rawDelete(t *testing.T, key []byte) {
	t.Helper()
	b, err := f.aux.NewBatch()
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.DeleteRange(key, append(bytes.Clone(key), 0)))
	require.NoError(t, b.Commit())
}

func TestInterruptedSaveIgnoredAndPruned(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20)
	small := keyState(t, 5, 0)
	f.save(2, small)

	// A save at 4 that stops after its first batch, as a crash would.
	crash := errors.New("crash")
	f.snaps.committed = func(batch int) error {
		if batch == 1 {
			return crash
		}
		return nil
	}
	_, err := f.snaps.Save(f.heads[3], keyState(t, 80_000, 0))
	require.ErrorIs(t, err, crash)
	f.snaps.committed = nil
	require.Len(t, f.chunksOf(4), chunksPerBatch, "the first batch is stored")
	seqs, err := f.snaps.list(context.Background())
	require.NoError(t, err)
	require.Equal(t, []uint64{2}, seqs, "but not listed")
	seq, got, logged := f.newest()
	require.Equal(t, uint64(2), seq, logged)
	require.Equal(t, encode(t, small), got)
	require.NotContains(t, logged, "ignoring", "an unlisted save is not even tried")

	// A later save whose pruning keeps 2 and 6 but not 4 deletes its chunks.
	f.save(6, small)
	require.Empty(t, f.chunksOf(4))
	require.Equal(t, map[byte]map[uint64][]uint32{
		chunkKey: {2: {0}, 6: {0}},
		indexKey: {2: {0}, 6: {0}},
	}, f.keysOf())

	// Saves at 8 and then 10 push 2 out (Kept), and a save at 7 (as after
	// the chain lost 8..: a history it no longer has) deletes those above.
	f.save(8, small)
	require.Equal(t, []uint32{0}, f.chunksOf(2))
	f.save(10, small)
	require.Empty(t, f.chunksOf(2))
	f.save(7, small)
	require.Equal(t, map[byte]map[uint64][]uint32{
		chunkKey: {6: {0}, 7: {0}},
		indexKey: {6: {0}, 7: {0}},
	}, f.keysOf())
}

func TestSaveDeletesOlderEnvelopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	// Single values an older build left, listed.
	for _, seq := range []uint64{1, 2} {
		f.rawSet(t, snapKey(oldValueKey, seq), []byte{1})
		f.rawSet(t, snapKey(indexKey, seq), nil)
	}
	seq, _, logged := f.newest()
	require.Zero(t, seq)
	require.Contains(t, logged, "envelope version 1")
	small := keyState(t, 5, 0)
	for _, seq := range []uint64{3, 4, 5} {
		f.save(seq, small)
	}
	require.Equal(t, map[byte]map[uint64][]uint32{
		chunkKey: {3: {0}, 4: {0}, 5: {0}},
		indexKey: {3: {0}, 4: {0}, 5: {0}},
	}, f.keysOf())
}
