package eventstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// TestFailStop makes Pebble's WAL fsync fail for real (errorfs under Pebble)
// and checks that every waiting caller gets the error, later appends are
// refused without touching the disk again, and nothing unacknowledged is
// visible after reopening.
func TestFailStop(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData {
			return errorfs.ErrInjected
		}
		return nil
	})}
	s, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: errorfs.Wrap(mem, toggle), CreateIfMissing: true})
	require.NoError(t, err)
	ctx := context.Background()
	acked, err := s.Append(ctx, eventstore.DefaultChain, draft(1))
	require.NoError(t, err)

	toggle.On()
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { _, errs[i] = s.Append(ctx, eventstore.DefaultChain, draft(100+i)) })
	}
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, eventstore.ErrStoreFailed)
	}
	require.ErrorIs(t, s.Failed(), eventstore.ErrStoreFailed)

	toggle.Off() // the disk "recovers": the store must still refuse, not retry
	_, err = s.Append(ctx, eventstore.DefaultChain, draft(999))
	require.ErrorIs(t, err, eventstore.ErrStoreFailed)
	head, err := s.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), head.Seq, "the head never moves past the last durable record")
	_ = s.Close()

	reopened, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: mem})
	require.NoError(t, err)
	defer reopened.Close()
	recs := allRecords(t, reopened, eventstore.DefaultChain)
	require.NotEmpty(t, recs)
	assert.Equal(t, acked[0], recs[0])
	got, err := reopened.Append(ctx, eventstore.DefaultChain, draft(2))
	require.NoError(t, err, "a reopened store accepts appends again")
	assert.Equal(t, uint64(len(recs)+1), got[0].Seq)
}
