package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// refusing is a Replicator that refuses every batch, as a stream does
// after another writer appended first.
type refusing struct{ calls int }

func (r *refusing) Replicate(context.Context, string, uint64, [][]byte, []byte) error {
	r.calls++
	return errors.New("wrong last sequence")
}

func storedOf(t *testing.T, s *eventstore.Store, chain string) [][]byte {
	t.Helper()
	var out [][]byte
	require.NoError(t, s.Scan(context.Background(), chain, 1, ^uint64(0), func(_ uint64, b []byte) error {
		out = append(out, append([]byte(nil), b...))
		return nil
	}))
	return out
}

func TestIngestChecksRecords(t *testing.T) {
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/ingest")
	sign := func(o *eventstore.Options) { o.Signer = signer }
	src := open(t, vfs.NewMem(), "src", sign)
	defer src.Close()
	for i := range 5 {
		_, err := src.Append(ctx, eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
	}
	stored := storedOf(t, src, eventstore.DefaultChain)
	note, err := src.SignedCheckpoint(ctx, eventstore.DefaultChain)
	require.NoError(t, err)
	tampered := append([]byte(nil), stored[1]...)
	tampered[len(tampered)-40] ^= 1

	for _, tc := range []struct {
		name   string
		stored [][]byte
		note   []byte
		want   error
	}{
		{"a gap", [][]byte{stored[0], stored[2]}, note, eventstore.ErrMalformedRecord},
		{"not from genesis", stored[1:], note, eventstore.ErrMalformedRecord},
		{"a tampered record", [][]byte{stored[0], tampered}, note, eventstore.ErrMalformedRecord},
		{"another chain's name", stored, note, eventstore.ErrMalformedRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := open(t, vfs.NewMem(), "dst", sign)
			defer dst.Close()
			chain := eventstore.DefaultChain
			if tc.name == "another chain's name" {
				chain = "other"
			}
			_, err := dst.Ingest(ctx, chain, tc.stored, tc.note)
			require.ErrorIs(t, err, tc.want)
			h, err := dst.Head(chain)
			require.NoError(t, err)
			require.Zero(t, h.Seq, "nothing appended")
		})
	}

	t.Run("a checkpoint of another tree fences and appends nothing", func(t *testing.T) {
		dst := open(t, vfs.NewMem(), "dst", sign)
		defer dst.Close()
		p, err := dst.Ingest(ctx, eventstore.DefaultChain, stored[:4], note)
		require.NoError(t, err)
		_, err = p.Wait(ctx)
		require.ErrorIs(t, err, eventstore.ErrCheckpointMismatch)
		require.ErrorIs(t, err, eventstore.ErrFenced)
		h, err := dst.Head(eventstore.DefaultChain)
		require.NoError(t, err)
		require.Zero(t, h.Seq)
	})

	t.Run("ingested records equal the source's, overlap dropped", func(t *testing.T) {
		dst := open(t, vfs.NewMem(), "dst", sign)
		defer dst.Close()
		p, err := dst.Ingest(ctx, eventstore.DefaultChain, stored[:3], nil)
		require.NoError(t, err)
		_, err = p.Wait(ctx)
		require.ErrorIs(t, err, eventstore.ErrNotCovered, "a signed store wants the checkpoint")
		p, err = dst.Ingest(ctx, eventstore.DefaultChain, stored, note)
		require.NoError(t, err)
		_, err = p.Wait(ctx)
		require.NoError(t, err)
		p, err = dst.Ingest(ctx, eventstore.DefaultChain, stored[3:], note)
		require.NoError(t, err, "records it holds already")
		_, err = p.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, eventstoretest.All(t, src, eventstore.DefaultChain), eventstoretest.All(t, dst, eventstore.DefaultChain))
		got, err := dst.SignedCheckpoint(ctx, eventstore.DefaultChain)
		require.NoError(t, err)
		require.Equal(t, note, got)
		// It sequences on top of them.
		recs, err := dst.Append(ctx, eventstore.DefaultChain, draft(9))
		require.NoError(t, err)
		require.Equal(t, uint64(6), recs[0].Seq)
	})
}

func TestRefusedReplicationFencesNotFails(t *testing.T) {
	ctx := context.Background()
	rep := &refusing{}
	s := open(t, vfs.NewMem(), "dir", func(o *eventstore.Options) { o.Replicator = rep })
	defer s.Close()
	for range 3 {
		_, err := s.Append(ctx, eventstore.DefaultChain, draft(1))
		require.ErrorIs(t, err, eventstore.ErrFenced)
	}
	require.Equal(t, 3, rep.calls, "each append gets a fresh writer")
	require.NoError(t, s.Failed(), "a refused batch does not fail the store")
	h, err := s.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	require.Zero(t, h.Seq)
	require.Empty(t, storedOf(t, s, eventstore.DefaultChain))
}
