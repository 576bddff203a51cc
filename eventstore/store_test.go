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

func TestStoreContract(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
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
	{"append assigns contiguous seqs and links hashes", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		ctx := context.Background()
		first, err := s.Append(ctx, eventstore.DefaultChain, draft(1))
		require.NoError(t, err)
		rest, err := s.Append(ctx, eventstore.DefaultChain, draft(2), draft(3))
		require.NoError(t, err)
		recs := append(first, rest...)
		require.Len(t, recs, 3)
		prev := eventstore.GenesisPrevHash
		for i, r := range recs {
			assert.Equal(t, uint64(i+1), r.Seq)
			assert.Equal(t, eventstore.DefaultChain, r.Chain)
			assert.Equal(t, prev, r.PrevHash, "record %d links to its predecessor", r.Seq)
			assert.Equal(t, r.ComputeHash(), r.Hash)
			assert.Equal(t, eventstore.HashVersion, r.HashVersion)
			assert.Len(t, r.ID, 26)
			prev = r.Hash
		}
		head, err := s.Head(eventstore.DefaultChain)
		require.NoError(t, err)
		assert.Equal(t, eventstore.Head{Seq: 3, Hash: recs[2].Hash}, head)
	}},
	{"records read back identical", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		ctx := context.Background()
		var want []eventstore.Record
		for i := range 5 {
			r, err := s.Append(ctx, eventstore.DefaultChain, eventstore.Draft{
				Time: time.Date(2026, 1, 2, 3, 4, 5, 6+i, time.UTC), Type: "t", Actor: "a", Payload: []byte{0, 1, byte(i)},
			})
			require.NoError(t, err)
			want = append(want, r...)
		}
		assert.Equal(t, want, allRecords(t, s, eventstore.DefaultChain))
		got, err := s.Get(ctx, eventstore.DefaultChain, 3)
		require.NoError(t, err)
		assert.Equal(t, want[2], got)
		_, err = s.Get(ctx, eventstore.DefaultChain, 6)
		require.ErrorIs(t, err, eventstore.ErrNotFound)
		_, err = s.Get(ctx, eventstore.DefaultChain, 0)
		require.ErrorIs(t, err, eventstore.ErrNotFound)
	}},
	{"scan bounds are inclusive", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		for i := range 10 {
			_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(i))
			require.NoError(t, err)
		}
		var seqs []uint64
		require.NoError(t, s.Scan(context.Background(), eventstore.DefaultChain, 4, 6, func(seq uint64, _ []byte) error {
			seqs = append(seqs, seq)
			return nil
		}))
		assert.Equal(t, []uint64{4, 5, 6}, seqs)
	}},
	{"reopen continues the chain", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		ctx := context.Background()
		before, err := s.Append(ctx, eventstore.DefaultChain, draft(1), draft(2))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		s = open(t, fs, dir)
		head, err := s.Head(eventstore.DefaultChain)
		require.NoError(t, err)
		assert.Equal(t, eventstore.Head{Seq: 2, Hash: before[1].Hash}, head)
		after, err := s.Append(ctx, eventstore.DefaultChain, draft(3))
		require.NoError(t, err)
		assert.Equal(t, uint64(3), after[0].Seq)
		assert.Equal(t, before[1].Hash, after[0].PrevHash)
		assert.Equal(t, append(before, after...), allRecords(t, s, eventstore.DefaultChain))
	}},
	{"time never decreases along a chain", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		late := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		recs, err := s.Append(context.Background(), eventstore.DefaultChain,
			eventstore.Draft{Time: late, Type: "t"}, eventstore.Draft{Time: late.Add(-time.Hour), Type: "t"})
		require.NoError(t, err)
		assert.Equal(t, late, recs[1].Time)
	}},
	{"chains are independent", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		a, err := s.Append(context.Background(), "tenant-a", draft(1))
		require.NoError(t, err)
		b, err := s.Append(context.Background(), "tenant-b", draft(1))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), a[0].Seq)
		assert.Equal(t, uint64(1), b[0].Seq)
		assert.Len(t, allRecords(t, s, "tenant-a"), 1)
		_, err = s.Append(context.Background(), "Bad Chain", draft(1))
		require.Error(t, err)
	}},
	{"empty append is refused", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		_, err := s.Append(context.Background(), eventstore.DefaultChain)
		require.ErrorIs(t, err, eventstore.ErrEmptyAppend)
	}},
	{"closed store refuses appends and close is idempotent", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(1))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
		_, err = s.Append(context.Background(), eventstore.DefaultChain, draft(2))
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}},
	{"close commits what is queued", func(t *testing.T, fs vfs.FS, dir string) {
		s := open(t, fs, dir)
		var pendings []*eventstore.Pending
		for i := range 100 {
			p, err := s.Enqueue(context.Background(), eventstore.DefaultChain, draft(i))
			require.NoError(t, err)
			pendings = append(pendings, p)
		}
		require.NoError(t, s.Close())
		for _, p := range pendings {
			_, err := p.Wait(context.Background())
			require.NoError(t, err)
		}
		s = open(t, fs, dir)
		assert.Len(t, allRecords(t, s, eventstore.DefaultChain), 100)
	}},
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

func TestEnqueueOrderIsCallOrder(t *testing.T) {
	t.Parallel()
	s := open(t, vfs.NewMem(), "/d")
	var ps []*eventstore.Pending
	for i := range 200 {
		p, err := s.Enqueue(context.Background(), eventstore.DefaultChain, draft(i))
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), p.Records()[0].Seq)
		ps = append(ps, p)
	}
	for i, p := range ps {
		recs, err := p.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf(`{"i":%d}`, i), string(recs[0].Payload))
	}
}

func TestOptionsValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := eventstore.Options{ReadOnly: true, CreateIfMissing: true, MaxPending: -1}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Dir is required")
	assert.Contains(t, err.Error(), "exclude each other")
	assert.Contains(t, err.Error(), "must not be negative")
}
