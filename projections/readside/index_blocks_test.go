package readside

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
)

func TestSeqBlocks(t *testing.T) {
	t.Parallel()
	for _, seqs := range [][]uint64{{1}, {7}, {1, 2, 3}, {5, 130, 131, 1 << 40}, {^uint64(0) - 1, ^uint64(0)}} {
		block := appendSeqBlock(nil, seqs)
		var got []uint64
		require.NoError(t, eachSeqInBlock(block, seqs[len(seqs)-1], func(s uint64) error { got = append(got, s); return nil }))
		require.Equal(t, seqs, got)
	}
	for _, tc := range []struct {
		name    string
		block   []byte
		lastSeq uint64
	}{
		{"empty", nil, 5},
		{"repeated seq", []byte{5, 0}, 5},
		{"truncated uvarint", []byte{5, 0x80}, 5},
		{"last seq is not the key's", []byte{5, 1}, 5},
		{"overflow", binary.AppendUvarint(binary.AppendUvarint(nil, ^uint64(0)), 2), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := eachSeqInBlock(tc.block, tc.lastSeq, func(uint64) error { return nil })
			require.ErrorIs(t, err, errCorruptBlock)
		})
	}
}

// appendDecisions appends n decisions of agents agent-0..agent-2 and
// sessions sess-0..sess-6 and returns, per agent, the seqs it got.
func appendDecisions(t *testing.T, store *eventstore.Store, first, n int) map[string][]uint64 {
	t.Helper()
	bySeq := map[string][]uint64{}
	for i := first; i < first+n; i++ {
		m := decision.Made{Request: policy.Request{AgentRole: "analyst", AgentID: fmt.Sprintf("agent-%d", i%3),
			SourceID: "crm", SessionID: fmt.Sprintf("sess-%d", i%7)}, Decision: decision.Allow, KeyID: "key_A",
			EvaluatedRole: "analyst", EvaluatedAt: time.Unix(int64(i), 0).UTC()}
		payload, err := json.Marshal(m)
		require.NoError(t, err)
		r, err := store.Append(context.Background(), eventstore.DefaultChain,
			eventstore.Draft{Time: m.EvaluatedAt, Type: decision.TypeMade, Actor: "key_A", Payload: payload})
		require.NoError(t, err)
		bySeq[m.Request.AgentID] = append(bySeq[m.Request.AgentID], r[0].Seq)
	}
	return bySeq
}

func openTestStore(t *testing.T, dir string, readOnly bool) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: !readOnly, ReadOnly: readOnly,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestPostingsAcrossBlocks indexes in many small catch-ups, so that every
// list spans many blocks, and reads every range and page of it.
func TestPostingsAcrossBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openTestStore(t, t.TempDir(), false)
	ix, err := NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	want := map[string][]uint64{}
	for i := 0; i < 300; i += 37 {
		for agent, seqs := range appendDecisions(t, store, i, 37) {
			want[agent] = append(want[agent], seqs...)
		}
		_, err := ix.CatchUp(ctx)
		require.NoError(t, err)
	}
	checkpoint, err := ix.Checkpoint()
	require.NoError(t, err)
	require.EqualValues(t, 37*9, checkpoint)

	for agent, seqs := range want {
		for _, r := range [][2]uint64{{0, checkpoint}, {0, 1}, {1, 2}, {40, 41}, {36, 38}, {100, 200}, {checkpoint - 1, checkpoint}, {checkpoint, ^uint64(0)}} {
			var got []uint64
			require.NoError(t, ix.postings(ctx, FieldAgentID, agent, r[0], r[1], func(s uint64) error { got = append(got, s); return nil }))
			var expect []uint64
			for _, s := range seqs {
				if s > r[0] && s <= r[1] {
					expect = append(expect, s)
				}
			}
			require.Equal(t, expect, got, "%s in (%d, %d]", agent, r[0], r[1])
		}

		// Pages of 5 through Query give every seq once, in order.
		var paged []uint64
		after := uint64(0)
		for {
			last, more, err := ix.Query(ctx, EventFilter{AgentID: agent}, after, 5, func(r eventstore.Record) error {
				paged = append(paged, r.Seq)
				return nil
			})
			require.NoError(t, err)
			if !more {
				break
			}
			after = last
		}
		require.Equal(t, seqs, paged, agent)
	}
}

// TestIndexInOldFormatIsRebuilt writes an index the way the first layout
// did (one key per posting, no format stamp) and checks that opening it
// writable drops and rebuilds it, and read-only ignores it, while queries
// stay right throughout.
func TestIndexInOldFormatIsRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store := openTestStore(t, dir, false)
	want := appendDecisions(t, store, 0, 50)
	aux, err := store.Aux("idx-" + eventstore.DefaultChain)
	require.NoError(t, err)
	b, err := aux.NewBatch()
	require.NoError(t, err)
	for _, seq := range want["agent-1"] {
		require.NoError(t, b.Set(postingKey(FieldAgentID, "agent-1", seq), nil))
	}
	require.NoError(t, b.Set(checkpointKey, binary.BigEndian.AppendUint64(nil, 50)))
	require.NoError(t, b.Commit())
	require.NoError(t, b.Close())
	require.NoError(t, store.Close())

	query := func(ix *Index) []uint64 {
		var got []uint64
		_, _, err := ix.Query(ctx, EventFilter{AgentID: "agent-1"}, 0, 0, func(r eventstore.Record) error {
			got = append(got, r.Seq)
			return nil
		})
		require.NoError(t, err)
		return got
	}

	readOnly := openTestStore(t, dir, true)
	ix, err := NewIndex(readOnly, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	checkpoint, err := ix.Checkpoint()
	require.NoError(t, err)
	require.Zero(t, checkpoint, "an old index must not be read")
	require.Equal(t, want["agent-1"], query(ix))
	require.NoError(t, readOnly.Close())

	store = openTestStore(t, dir, false)
	ix, err = NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	checkpoint, err = ix.Checkpoint()
	require.NoError(t, err)
	require.Zero(t, checkpoint, "the old index must be dropped")
	require.Equal(t, want["agent-1"], query(ix))
	done, err := ix.CatchUp(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 50, done)
	require.Equal(t, want["agent-1"], query(ix))

	// Opened again, the rebuilt index is kept.
	ix, err = NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	checkpoint, err = ix.Checkpoint()
	require.NoError(t, err)
	require.EqualValues(t, 50, checkpoint)
}
