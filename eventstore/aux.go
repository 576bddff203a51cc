package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// kindAux prefixes derived data kept next to the log: 'x' ns 0x00 key.
const kindAux byte = 'x'

// Aux is a namespace of derived data (secondary indexes, snapshots). The
// store never interprets it and verify never reads it: everything in it must
// be rebuildable from the log.
//
// Derived data lives in a second Pebble database in the "derived" folder
// inside the data folder, with its write-ahead log disabled, so that it
// never shares the log's WAL and fsyncs: index writes cost the durable path
// nothing. After a crash it comes back as a consistent prefix of its batches
// (whatever Pebble had flushed), so a projection that keeps its checkpoint in
// the same batches as its data resumes from an older checkpoint and redoes
// the rest. Close flushes it. A read-only store without a derived folder
// reads as empty. Backups (Checkpoint) leave it out. Safe for concurrent
// use; write batches are not.
type Aux struct {
	s      *Store
	prefix []byte
}

// Aux returns the namespace ns (1 to 63 characters like a chain name).
func (s *Store) Aux(ns string) (*Aux, error) {
	if err := ValidateChain(ns); err != nil {
		return nil, fmt.Errorf("eventstore: aux namespace: %w", err)
	}
	p := append([]byte{kindAux}, ns...)
	return &Aux{s: s, prefix: append(p, 0x00)}, nil
}

func (a *Aux) key(k []byte) []byte {
	out := make([]byte, 0, len(a.prefix)+len(k))
	return append(append(out, a.prefix...), k...)
}

// Get returns a copy of the value of key, or ok false.
func (a *Aux) Get(key []byte) (value []byte, ok bool, err error) {
	if err := a.s.DerivedFailed(); err != nil {
		return nil, false, err
	}
	if err := a.s.beginRead(); err != nil {
		return nil, false, err
	}
	defer a.s.readers.RUnlock()
	if a.s.aux == nil {
		return nil, false, nil
	}
	v, closer, err := a.s.aux.Get(a.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("eventstore: aux get: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// Scan calls fn for every key of the namespace in [lower, upper) (nil upper:
// to the end), in order, with views valid only during the call.
func (a *Aux) Scan(ctx context.Context, lower, upper []byte, fn func(key, value []byte) error) error {
	if err := a.s.DerivedFailed(); err != nil {
		return err
	}
	if err := a.s.beginRead(); err != nil {
		return err
	}
	defer a.s.readers.RUnlock()
	hi := a.key(upper)
	if upper == nil {
		hi = append(append([]byte(nil), a.prefix[:len(a.prefix)-1]...), 0x01)
	}
	if a.s.aux == nil {
		return nil
	}
	it, err := a.s.aux.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: a.key(lower), UpperBound: hi})
	if err != nil {
		return fmt.Errorf("eventstore: aux scan: %w", err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("eventstore: aux scan: %w", err)
		}
		if err := fn(it.Key()[len(a.prefix):], v); err != nil {
			return err
		}
	}
	return it.Error()
}

// AuxBatch collects writes to one namespace; Commit applies them atomically.
// Not safe for concurrent use. Close releases it.
type AuxBatch struct {
	a *Aux
	b *pebble.Batch
}

// NewBatch starts a write batch. It fails on a read-only or closed store
// and once the derived database has failed (ErrDerivedFailed).
func (a *Aux) NewBatch() (*AuxBatch, error) { return a.NewBatchSize(0) }

// NewBatchSize is NewBatch with room for about size bytes of keys and
// values allocated up front, for a batch known to be large: a batch
// otherwise grows by doubling, allocating about twice its size on the way.
// Reset keeps that room (up to size) for the next batch.
func (a *Aux) NewBatchSize(size int) (*AuxBatch, error) {
	if a.s.opts.ReadOnly || a.s.aux == nil {
		return nil, ErrReadOnly
	}
	if err := a.s.DerivedFailed(); err != nil {
		return nil, err
	}
	if err := a.s.beginRead(); err != nil {
		return nil, err
	}
	defer a.s.readers.RUnlock()
	if size > 0 {
		return &AuxBatch{a: a, b: a.s.aux.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(size))}, nil
	}
	return &AuxBatch{a: a, b: a.s.aux.NewBatch()}, nil
}

// Set writes key = value.
func (b *AuxBatch) Set(key, value []byte) error { return b.b.Set(b.a.key(key), value, nil) }

// DeleteRange deletes every key in [lower, upper) (nil upper: to the end).
func (b *AuxBatch) DeleteRange(lower, upper []byte) error {
	hi := b.a.key(upper)
	if upper == nil {
		hi = append(append([]byte(nil), b.a.prefix[:len(b.a.prefix)-1]...), 0x01)
	}
	return b.b.DeleteRange(b.a.key(lower), hi, nil)
}

// Len is the number of operations in the batch.
func (b *AuxBatch) Len() int { return int(b.b.Count()) }

// Commit applies the batch without fsync: derived data is rebuilt from the
// log after a crash. A failed commit fails the derived database
// (ErrDerivedFailed), not the log.
func (b *AuxBatch) Commit() error {
	if err := b.a.s.DerivedFailed(); err != nil {
		return err
	}
	if err := b.a.s.beginRead(); err != nil {
		return err
	}
	defer b.a.s.readers.RUnlock()
	if err := recoverFatal(func() error { return b.b.Commit(pebble.NoSync) }); err != nil {
		return fmt.Errorf("eventstore: aux commit: %w", b.a.s.failDerived(err))
	}
	return nil
}

// Reset empties the batch, committed or not, for another batch of writes.
func (b *AuxBatch) Reset() { b.b.Reset() }

// Close releases the batch.
func (b *AuxBatch) Close() error { return b.b.Close() }

// auxFolder is the folder of the derived-data database inside Dir.
const auxFolder = "derived"

// openAux opens (or, when writable, creates) the derived-data database.
// It returns nil without error for a read-only store that has none.
func openAux(opts Options, w *dbWatch) (*pebble.DB, error) {
	dir := opts.FS.PathJoin(opts.Dir, auxFolder)
	if opts.ReadOnly {
		if _, err := opts.FS.Stat(dir); err != nil {
			return nil, nil
		}
	}
	popts := &pebble.Options{
		FS:         opts.FS,
		ReadOnly:   opts.ReadOnly,
		DisableWAL: true,
		// Index postings arrive as a steady stream of small keys: a large
		// memtable flushes rarely and uncompressed upper levels keep
		// compaction cheap, as for the log (measured: compaction of this
		// database was 28% of server CPU under load with the defaults).
		MemTableSize: 64 << 20,
	}
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return logCompression })
	w.configure(popts)
	db, err := openPebble(dir, popts, w)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open derived data in %s: %w", dir, err)
	}
	return db, nil
}

// closeAux flushes (without a WAL, unflushed writes would be lost) and
// closes the derived-data database. A failed one is not flushed (the flush
// would wait for Pebble's endless retries), and closing it is bounded.
func (s *Store) closeAux() error {
	db := s.aux
	if db == nil {
		return nil
	}
	return closeBounded("derived", s.auxFailedCh, func() error {
		var flushErr error
		if !s.opts.ReadOnly && s.DerivedFailed() == nil {
			flushErr = s.flushAux()
		}
		return errors.Join(flushErr, recoverFatal(db.Close))
	})
}

// flushAux flushes the derived database's memtables, or gives up when it
// fails meanwhile.
func (s *Store) flushAux() error {
	var flushed <-chan struct{}
	err := recoverFatal(func() (err error) {
		flushed, err = s.aux.AsyncFlush()
		return err
	})
	if err != nil {
		return fmt.Errorf("eventstore: flush derived data: %w", s.failDerived(err))
	}
	select {
	case <-flushed:
		return nil
	case <-s.auxFailedCh:
		return s.DerivedFailed()
	}
}
