package eventstore_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// diskFull returns an injector that, while toggled on, fails every write to
// a file whose path passes match with ENOSPC, and counts the failures.
func diskFull(match func(path string) bool) (*errorfs.Toggle, *atomic.Int64) {
	var n atomic.Int64
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && match(op.Path) {
			n.Add(1)
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
		}
		return nil
	})}, &n
}

// TestDerivedFailureKeepsTheLogAppending fills the "disk" of the derived
// database only (errorfs under Pebble): its flush fails for real. The
// derived database must fail on its own (ErrDerivedFailed on every read and
// write of it), the log must keep appending and stay healthy, Pebble's
// retries must neither spin nor flood the log, Close must return, and a
// reopened store must hold every appended record.
func TestDerivedFailureKeepsTheLogAppending(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	toggle, injected := diskFull(func(path string) bool { return strings.HasPrefix(path, "/d/derived/") })
	logs := &eventstoretest.Buffer{}
	s, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: errorfs.Wrap(mem, toggle), CreateIfMissing: true,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 3 {
		_, err := s.Append(ctx, eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
	}
	aux, err := s.Aux("test")
	require.NoError(t, err)
	b, err := aux.NewBatch()
	require.NoError(t, err)
	require.NoError(t, b.Set([]byte("k"), []byte("v")))
	require.NoError(t, b.Commit())
	require.NoError(t, b.Close())

	toggle.On()
	// A batch of more than half a memtable (64 MiB) is flushed on its
	// own at once: the flush writes an sstable and fails.
	b, err = aux.NewBatch()
	require.NoError(t, err)
	require.NoError(t, b.Set([]byte("big"), make([]byte, 33<<20)))
	_ = b.Commit() // applied to the memtable, or refused: either is fine
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { return s.DerivedFailed() != nil }, 5*time.Second, 5*time.Millisecond,
		"a failed flush fails the derived database")
	require.ErrorIs(t, s.DerivedFailed(), eventstore.ErrDerivedFailed)

	for i := range 100 {
		_, err := s.Append(ctx, eventstore.DefaultChain, draft(100+i))
		require.NoError(t, err, "the log keeps appending while derived data is failed")
	}
	require.NoError(t, s.Failed())
	_, _, err = aux.Get([]byte("k"))
	require.ErrorIs(t, err, eventstore.ErrDerivedFailed)
	_, err = aux.NewBatch()
	require.ErrorIs(t, err, eventstore.ErrDerivedFailed)
	require.ErrorIs(t, aux.Scan(ctx, nil, nil, func(_, _ []byte) error { return nil }), eventstore.ErrDerivedFailed)

	// Pebble retries the flush; it must not spin or flood the log.
	time.Sleep(1500 * time.Millisecond)
	attempts := injected.Load()
	assert.Less(t, attempts, int64(60), "Pebble's flush retries are slowed down")
	assert.LessOrEqual(t, strings.Count(logs.String(), "pebble background error"), 2,
		"repeated background errors are logged once per interval: %s", logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "derived database failed"), "the failure is logged once")

	began := time.Now()
	err = s.Close() // a failed derived database may report that it was left open
	t.Logf("close took %v: %v; %d injected write failures; logs:\n%s", time.Since(began), err, attempts, logs.String())
	assert.Less(t, time.Since(began), 7*time.Second, "closing a failed derived database is bounded")

	toggle.Off()
	var reopened *eventstore.Store
	require.Eventually(t, func() bool {
		reopened, err = eventstore.Open(eventstore.Options{Dir: "/d", FS: mem})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "reopen: %v", err)
	defer reopened.Close()
	report, err := verify.Store(ctx, reopened, eventstore.DefaultChain)
	require.NoError(t, err)
	require.True(t, report.Valid, "%+v", report.Detail)
	assert.Len(t, allRecords(t, reopened, eventstore.DefaultChain), 103, "every appended record is on the log")
	require.NoError(t, reopened.DerivedFailed())
	aux, err = reopened.Aux("test")
	require.NoError(t, err)
	b, err = aux.NewBatch()
	require.NoError(t, err, "a reopened store writes derived data again")
	require.NoError(t, b.Close())
}

// TestOpenOnAFullDiskFailsFast reopens a store whose WAL must be flushed at
// open while every sstable write fails: Pebble would retry that flush
// forever inside pebble.Open. Open must return the error within seconds,
// and once the disk has room the store opens with every record.
func TestOpenOnAFullDiskFailsFast(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	s, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: mem, CreateIfMissing: true})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 10 {
		_, err := s.Append(ctx, eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	toggle, injected := diskFull(func(path string) bool { return strings.HasSuffix(path, ".sst") })
	toggle.On()
	began := time.Now()
	_, err = eventstore.Open(eventstore.Options{Dir: "/d", FS: errorfs.Wrap(mem, toggle)})
	require.Error(t, err)
	assert.Less(t, time.Since(began), 3*time.Second)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Positive(t, injected.Load(), "the open really hit the full disk")

	toggle.Off() // room again: the abandoned open finishes and lets go
	var reopened *eventstore.Store
	require.Eventually(t, func() bool {
		reopened, err = eventstore.Open(eventstore.Options{Dir: "/d", FS: errorfs.Wrap(mem, toggle)})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "reopen: %v", err)
	defer reopened.Close()
	assert.Len(t, allRecords(t, reopened, eventstore.DefaultChain), 10)
}

// TestRemovedDataFolderFailsTheLog removes the data folder under an open
// store. Pebble would go on writing into the removed files, acknowledging
// records no restart can find; the store must fail-stop instead, and Close
// must return.
func TestRemovedDataFolderFailsTheLog(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	s, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: mem, CreateIfMissing: true})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = s.Append(ctx, eventstore.DefaultChain, draft(1))
	require.NoError(t, err)

	require.NoError(t, mem.RemoveAll("/d"))
	require.Eventually(t, func() bool { return s.Failed() != nil && s.DerivedFailed() != nil }, 5*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, s.Failed(), eventstore.ErrStoreFailed)
	assert.Contains(t, s.Failed().Error(), "was removed")
	_, err = s.Append(ctx, eventstore.DefaultChain, draft(2))
	require.ErrorIs(t, err, eventstore.ErrStoreFailed, "nothing is acknowledged into a removed folder")

	began := time.Now()
	_ = s.Close()
	assert.Less(t, time.Since(began), 7*time.Second)
}
