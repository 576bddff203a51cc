package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// backend opens stores on one kind of filesystem. Every contract test runs
// against each backend.
type backend struct {
	name string
	// newDir returns a fresh store location and the filesystem holding it.
	newDir func(t *testing.T) (vfs.FS, string)
}

var backends = []backend{
	{name: "pebble-disk", newDir: func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
	{name: "pebble-mem", newDir: func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "/data" }},
}

func open(t *testing.T, fs vfs.FS, dir string, mutate ...func(*eventstore.Options)) *eventstore.Store {
	t.Helper()
	opts := eventstore.Options{Dir: dir, FS: fs, CreateIfMissing: true}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := eventstore.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func draft(i int) eventstore.Draft {
	return eventstore.Draft{Type: "test.appended", Actor: "system:test", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))}
}

func allRecords(t *testing.T, s *eventstore.Store, chain string) []eventstore.Record {
	t.Helper()
	var out []eventstore.Record
	require.NoError(t, s.Records(context.Background(), chain, 1, 0, func(r eventstore.Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// TestStoreContract runs the eventstore.Log contract suite against the
// Pebble store on disk and in memory, then the cases only a Pebble store
// has (read-only opening, heads on disk, commit sharing).
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("log", func(t *testing.T) {
				t.Parallel()
				eventstoretest.TestLog(t, func(t *testing.T) (eventstore.Log, func() eventstore.Log) {
					fs, dir := b.newDir(t)
					return open(t, fs, dir), func() eventstore.Log { return open(t, fs, dir) }
				})
			})
			t.Run("signed", func(t *testing.T) {
				t.Parallel()
				eventstoretest.TestSignedLog(t, func(t *testing.T, signer *checkpoint.Signer) (eventstore.Log, func() eventstore.Log) {
					fs, dir := b.newDir(t)
					sign := func(o *eventstore.Options) { o.Signer = signer }
					return open(t, fs, dir, sign), func() eventstore.Log { return open(t, fs, dir, sign) }
				})
			})
			for _, tc := range contractCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					fs, dir := b.newDir(t)
					tc.run(t, fs, dir)
				})
			}
		})
	}
}

var contractCases = []struct {
	name string
	run  func(t *testing.T, fs vfs.FS, dir string)
}{
	{"read-only store reads and refuses appends", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(1))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		ro := open(t, fs, dir, func(o *eventstore.Options) { o.ReadOnly, o.CreateIfMissing = true, false })
		assert.Len(t, allRecords(t, ro, eventstore.DefaultChain), 1)
		_, err = ro.Append(context.Background(), eventstore.DefaultChain, draft(2))
		require.ErrorIs(t, err, eventstore.ErrReadOnly)
	}},
	{"opening a missing store without CreateIfMissing fails", func(t *testing.T, fs vfs.FS, dir string) {
		exists, err := eventstore.Exists(fs, dir)
		require.NoError(t, err)
		assert.False(t, exists)
		_, err = eventstore.Open(eventstore.Options{Dir: dir, FS: fs})
		require.Error(t, err)
		open(t, fs, dir)
		exists, err = eventstore.Exists(fs, dir)
		require.NoError(t, err)
		assert.True(t, exists)
	}},
	{"head mismatch on open names both", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		recs, err := s.Append(context.Background(), eventstore.DefaultChain, draft(1), draft(2))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		db, err := pebble.Open(dir, &pebble.Options{FS: fs})
		require.NoError(t, err)
		require.NoError(t, db.Delete(eventstore.RecordKey(eventstore.DefaultChain, 2), pebble.Sync))
		require.NoError(t, db.Close())
		_, err = eventstore.Open(eventstore.Options{Dir: dir, FS: fs})
		require.ErrorIs(t, err, eventstore.ErrHeadMismatch)
		assert.Contains(t, err.Error(), fmt.Sprintf("seq 2 hash %x", recs[1].Hash))
		assert.Contains(t, err.Error(), fmt.Sprintf("seq 1 hash %x", recs[0].Hash))
	}},
	{"a chain whose head was deleted does not open as empty", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(1), draft(2))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		db, err := pebble.Open(dir, &pebble.Options{FS: fs})
		require.NoError(t, err)
		require.NoError(t, db.Delete(eventstore.HeadKey(eventstore.DefaultChain), pebble.Sync))
		require.NoError(t, db.Close())
		_, err = eventstore.Open(eventstore.Options{Dir: dir, FS: fs})
		require.ErrorIs(t, err, eventstore.ErrHeadMismatch)
		assert.Contains(t, err.Error(), "chain default has records but no head")
	}},
	{"concurrent appends share commits and keep order", func(t *testing.T, fs vfs.FS, dir string) {
		var mu sync.Mutex
		var batches []int
		s := open(t, fs, dir, func(o *eventstore.Options) {
			o.CommitObserver = func(n int, _ time.Duration) { mu.Lock(); batches = append(batches, n); mu.Unlock() }
		})
		const writers, each = 32, 50
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(w*1000+i))
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		recs := allRecords(t, s, eventstore.DefaultChain)
		require.Len(t, recs, writers*each)
		mu.Lock()
		defer mu.Unlock()
		assert.Less(t, len(batches), writers*each, "some appends shared a commit")
	}},
}

func TestOptionsValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := eventstore.Options{ReadOnly: true, CreateIfMissing: true, MaxPending: -1}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Dir is required")
	assert.Contains(t, err.Error(), "exclude each other")
	assert.Contains(t, err.Error(), "must not be negative")
}
