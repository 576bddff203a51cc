package writeside_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

func openStore(t *testing.T, rep eventstore.Replicator) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: slog.New(slog.DiscardHandler), Replicator: rep})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openLedger(t *testing.T, store eventstore.LogStore) *writeside.Ledger {
	t.Helper()
	l, err := writeside.Open(context.Background(), writeside.Config{Store: store, Logger: slog.New(slog.DiscardHandler), SnapshotEvery: writeside.NoSnapshots})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// ingestAll copies into to the records of from it does not have yet, as a
// follower node does with another node's records.
func ingestAll(t *testing.T, from, to *eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	have, err := to.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	var stored [][]byte
	require.NoError(t, from.Scan(ctx, eventstore.DefaultChain, have.Seq+1, ^uint64(0), func(_ uint64, b []byte) error {
		stored = append(stored, bytes.Clone(b))
		return nil
	}))
	if len(stored) == 0 {
		return
	}
	p, err := to.Ingest(ctx, eventstore.DefaultChain, stored, nil)
	require.NoError(t, err)
	_, err = p.Wait(ctx)
	require.NoError(t, err)
}

// TestCatchUpFollowsAnotherSequencer: records sequenced on another store
// and ingested into this one reach this Ledger through CatchUp, so a key
// created there authenticates here.
func TestCatchUpFollowsAnotherSequencer(t *testing.T) {
	ctx := context.Background()
	leaderStore, followerStore := openStore(t, nil), openStore(t, nil)
	leader, follower := openLedger(t, leaderStore), openLedger(t, followerStore)

	_, plaintext, _, err := leader.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "made-there", Scope: string(keys.ScopeRead)})
	require.NoError(t, err)
	ingestAll(t, leaderStore, followerStore)
	_, err = follower.Authenticate(plaintext)
	require.ErrorIs(t, err, keys.ErrInvalidKey, "not folded in yet")

	head, err := follower.CatchUp(ctx)
	require.NoError(t, err)
	require.Equal(t, leader.Applied(), head)
	_, err = follower.Authenticate(plaintext)
	require.NoError(t, err)

	// And again: a revocation there is in force here after the next CatchUp.
	require.NoError(t, revokeAll(ctx, leader))
	ingestAll(t, leaderStore, followerStore)
	_, err = follower.CatchUp(ctx)
	require.NoError(t, err)
	_, err = follower.Authenticate(plaintext)
	require.ErrorIs(t, err, keys.ErrInvalidKey, "revoked there, refused here")
}

func revokeAll(ctx context.Context, l *writeside.Ledger) error {
	for _, k := range l.Keys() {
		if _, err := l.RevokeKey(ctx, writeside.ActorInit, "", k.KeyID); err != nil {
			return err
		}
	}
	return nil
}

// refusing is a replicator whose remote log refuses batches while refuse
// is set, as a stream does once another node appended first.
type refusing struct{ refuse atomic.Bool }

func (r *refusing) Replicate(_ context.Context, chain string, first uint64, _ [][]byte, _ []byte) error {
	if r.refuse.Load() {
		return fmt.Errorf("%w: chain %s from %d: another node appended first", eventstore.ErrFenced, chain, first)
	}
	return nil
}

// TestCatchUpRebuildsAfterAFence: a change whose batch was refused was
// folded into the live state before the refusal; CatchUp rebuilds the
// state from the log, so the change is gone from it, and writes go on.
func TestCatchUpRebuildsAfterAFence(t *testing.T) {
	ctx := context.Background()
	rep := &refusing{}
	store := openStore(t, rep)
	l := openLedger(t, store)
	_, _, _, err := l.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "kept", Scope: string(keys.ScopeRead)})
	require.NoError(t, err)

	rep.refuse.Store(true)
	_, _, _, err = l.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "refused", Scope: string(keys.ScopeRead)})
	require.ErrorIs(t, err, eventstore.ErrFenced)
	require.Len(t, l.Keys(), 2, "the refused key was folded in before its batch was refused")

	_, err = l.CatchUp(ctx)
	require.NoError(t, err)
	require.Len(t, l.Keys(), 1, "rebuilt from the log, the refused key is gone")
	head, err := store.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	require.Equal(t, head, l.Applied())

	rep.refuse.Store(false)
	_, _, _, err = l.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "after", Scope: string(keys.ScopeRead)})
	require.NoError(t, err)
	reopened := openLedger(t, store)
	require.ElementsMatch(t, reopened.Keys(), l.Keys(), "the live state equals the log's")
}
