package eventstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/otel/trace"

	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/lograte"
)

// Errors returned by the store. Match them with errors.Is.
var (
	// ErrStoreFailed means a commit failed; the store refuses every further
	// append until it is reopened.
	ErrStoreFailed = errors.New("eventstore: store failed, reopen required")
	// ErrClosed means the store is closed or closing.
	ErrClosed = errors.New("eventstore: store closed")
	// ErrReadOnly means the store was opened read-only.
	ErrReadOnly = errors.New("eventstore: store is read-only")
	// ErrNotFound means no durable record has the requested seq.
	ErrNotFound = errors.New("eventstore: record not found")
	// ErrHeadMismatch means a chain's stored head does not match its last
	// record. The error text names both.
	ErrHeadMismatch = errors.New("eventstore: chain head does not match last record")
	// ErrEmptyAppend means Enqueue or Append was called without drafts.
	ErrEmptyAppend = errors.New("eventstore: nothing to append")
)

// Watermill topics the store publishes on (see Options.Publisher).
const (
	// DefaultHeadTopic is where durable heads are published unless
	// Options.HeadTopic says otherwise.
	DefaultHeadTopic = "custos.heads"
	// DefaultRecordTopic is the conventional Options.RecordTopic.
	DefaultRecordTopic = "custos.records"
)

// Options configure a Store. Only Dir is required.
type Options struct {
	// Dir is the data folder holding the Pebble database. Required.
	Dir string
	// FS replaces the operating system's filesystem, e.g. vfs.NewMem() in
	// tests. Default: vfs.Default.
	FS vfs.FS
	// ReadOnly opens an existing store for reading only (offline verify,
	// export). Appends return ErrReadOnly; the head check at open is skipped so
	// that verify can report a broken head instead of failing to open.
	ReadOnly bool
	// CreateIfMissing allows Open to create a new store in an empty folder.
	// Default false: opening a folder without a store is an error.
	CreateIfMissing bool
	// Replicator, if set, makes every group commit durable elsewhere
	// before it is written here (see Replicator); its refusals fence the
	// chain's writer instead of failing the store. Default nil: Pebble's
	// fsync alone makes records durable.
	Replicator Replicator
	// MaxBatchRecords caps the records in one group commit. Default 8192.
	MaxBatchRecords int
	// MaxPending caps how many Pendings may wait per chain before Enqueue
	// blocks (backpressure). Default 65536.
	MaxPending int
	// Publisher, if set, is told of durable progress after commits, on two
	// watermill topics, both in seq order and at least once:
	//
	//   - HeadTopic: a message each time a chain's durable head moves
	//     (several commits may fold into one), payload the head (see
	//     HeadMessage), metadata "chain" and "seq". Followers that read the
	//     store themselves, like projections, need only this.
	//   - RecordTopic, if set: every durable record, payload the stored record
	//     (see ParseStored), metadata "chain", "seq" and "type". Off by
	//     default: each record costs a message, two copies and two goroutines
	//     in watermill's GoChannel, about a tenth of a decision's CPU.
	//
	// Records are published before the head that covers them. The store
	// closes nothing it did not create: the caller closes Publisher after the
	// Store.
	Publisher message.Publisher
	// HeadTopic is the topic of durable heads. Default DefaultHeadTopic.
	HeadTopic string
	// RecordTopic is the topic of records; empty publishes none.
	RecordTopic string
	// Clock is the time source for drafts without a time. Default time.Now.
	Clock func() time.Time
	// Entropy feeds record ULIDs. Default crypto/rand.
	Entropy io.Reader
	// Logger receives warnings (publish failures). Default slog.Default().
	Logger *slog.Logger
	// CommitObserver, if set, is called after every successful group commit
	// with the number of records and the time the synced commit took.
	CommitObserver func(records int, took time.Duration)
	// TracerProvider, if set, traces every group commit as a span
	// "eventstore commit" with a child span "fsync" around the wait for
	// its sync, linked to the span context of every Enqueue call it
	// carried (trace.SpanContextFromContext of Enqueue's ctx). Spans carry
	// the chain, record counts and seqs, never a payload. Default nil: no
	// spans, and Enqueue does not look at ctx for one.
	TracerProvider trace.TracerProvider
	// Signer, if set, signs a checkpoint of each chain's new tree size in
	// every group commit, in the records' batch (see SignedCheckpoint), and
	// makes a writable Open refuse a chain that contradicts its latest
	// checkpoint (ErrCheckpointMismatch) or holds records no checkpoint
	// covers (ErrNotCovered). It is the deployment key: each chain is
	// signed, and checked, with Signer.ForChain(chain) (the deployment key
	// itself for chains default and system, a key derived from it for
	// every other chain; see ChainVerifierKey). Default nil: no checkpoints
	// are written or checked (tests, read-only tools).
	Signer *checkpoint.Signer
	// SignExisting lets a writable Open with a Signer sign the current head
	// of a chain that has records but no checkpoint at all (a store from
	// before checkpoints). Check the chain with verify first. Default false:
	// such a chain fails Open with ErrNotCovered.
	SignExisting bool
	// CheckpointKeepEvery is how often a checkpoint is kept for good: the
	// latest is always stored, and of the ones before it one per interval
	// stays. Default 1s.
	CheckpointKeepEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxBatchRecords <= 0 {
		o.MaxBatchRecords = 8192
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 65536
	}
	if o.HeadTopic == "" {
		o.HeadTopic = DefaultHeadTopic
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Entropy == nil {
		o.Entropy = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CheckpointKeepEvery <= 0 {
		o.CheckpointKeepEvery = time.Second
	}
	return o
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("eventstore: Options.Dir is required"))
	}
	if o.ReadOnly && o.CreateIfMissing {
		errs = append(errs, errors.New("eventstore: Options.ReadOnly and CreateIfMissing exclude each other"))
	}
	if o.MaxBatchRecords < 0 || o.MaxPending < 0 {
		errs = append(errs, errors.New("eventstore: Options.MaxBatchRecords and MaxPending must not be negative"))
	}
	return errors.Join(errs...)
}

// logCompression: none on L0-L4, which take the write load; Pebble's
// balanced choice on L5 and L6, where a long log comes to rest.
var logCompression = func() pebble.DBCompressionSettings {
	cs := pebble.DBCompressionBalanced
	cs.Name = "custos-log"
	for i := 0; i < len(cs.Levels)-2; i++ {
		cs.Levels[i] = pebble.DBCompressionNone.Levels[i]
	}
	return cs
}()

// Exists reports whether dir (on fs; nil means the OS filesystem) holds a
// store. A missing folder is not an error.
func Exists(fs vfs.FS, dir string) (bool, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(dir); errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return false, fmt.Errorf("eventstore: inspect %s: %w", dir, err)
	}
	return desc.Exists, nil
}

// Store is a set of hash-chained logs in one Pebble database. It is safe for
// concurrent use. See the package documentation for its guarantees.
type Store struct {
	opts Options
	db   *pebble.DB
	aux  *pebble.DB // derived data (see Aux); nil on a read-only store without it

	mu      sync.Mutex
	writers map[string]*chainWriter
	closed  bool

	failed    atomic.Pointer[error]
	failedCh  chan struct{} // closed when failed is set
	auxFailed atomic.Pointer[error]
	// auxFailedCh is closed when auxFailed is set.
	auxFailedCh chan struct{}
	limit       *lograte.Limiter // repeated log lines
	stopWatch   chan struct{}    // stops watchFolders; nil when not running
	watchDone   chan struct{}

	pub *publisher
	// tracer traces group commits (sequencer.go); nil without
	// Options.TracerProvider.
	tracer trace.Tracer
	// readers guards Pebble against Close while a read is running: reads
	// hold it shared, Close exclusively before closing Pebble.
	readers    sync.RWMutex
	readClosed bool
	// trees holds each chain's *treeCache (see treecache.go).
	trees sync.Map
	// keys holds each chain's *chainKey (see checkpoints.go).
	keys      sync.Map
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store in opts.Dir. A writable store checks every chain's
// stored head against its last record and fails with ErrHeadMismatch when
// they differ. The caller must Close the store.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	limit := lograte.New(lograte.DefaultEvery)
	logWatch := newWatch("log", opts.Logger, limit)
	popts := &pebble.Options{
		FS:               opts.FS,
		ReadOnly:         opts.ReadOnly,
		ErrorIfNotExists: !opts.CreateIfMissing,
		// A log of fresh records is mostly flushed and compacted, rarely
		// read: skip compression on the upper levels (hashes do not
		// compress) and let the bottom levels use Pebble's balanced zstd.
		MemTableSize: 64 << 20,
	}
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return logCompression })
	logWatch.configure(popts)
	db, err := openPebble(opts.Dir, popts, logWatch)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %w", opts.Dir, lockedError(opts.Dir, err))
	}
	s := &Store{opts: opts, db: db, writers: map[string]*chainWriter{}, limit: limit,
		failedCh: make(chan struct{}), auxFailedCh: make(chan struct{})}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	logWatch.opened(func(err error) { s.fail(fmt.Errorf("log database: %w", err)) })
	closeDB := func() { _ = closeBounded("log", s.failedCh, func() error { return recoverFatal(db.Close) }) }
	if !opts.ReadOnly {
		if err := s.checkHeads(); err != nil {
			closeDB()
			return nil, err
		}
	}
	auxWatch := newWatch("derived", opts.Logger, limit)
	if s.aux, err = openAux(opts, auxWatch); err != nil {
		closeDB()
		return nil, err
	}
	auxWatch.opened(func(err error) { s.failDerived(fmt.Errorf("derived database: %w", err)) })
	if !opts.ReadOnly {
		folders, err := s.folders()
		if err != nil {
			_ = s.closeAux()
			closeDB()
			return nil, err
		}
		s.stopWatch, s.watchDone = make(chan struct{}), make(chan struct{})
		go s.watchFolders(s.stopWatch, s.watchDone, folders)
	}
	if opts.Publisher != nil {
		s.pub = newPublisher(s)
	}
	return s, nil
}

// folders returns the data folder and the derived folder as they are now.
func (s *Store) folders() ([]folder, error) {
	var folders []folder
	for _, dir := range []string{s.opts.Dir, s.opts.FS.PathJoin(s.opts.Dir, auxFolder)} {
		fi, err := s.opts.FS.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("eventstore: %w", err)
		}
		folders = append(folders, folder{path: dir, info: fi})
	}
	return folders, nil
}

// checkHeads compares every stored head with the last record of its chain,
// and refuses a chain that has records but no head (a deleted head would
// otherwise make a chain look empty).
func (s *Store) checkHeads() error {
	if err := s.checkChainsHaveHeads(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindHead}, UpperBound: []byte{kindHead + 1}})
	if err != nil {
		return fmt.Errorf("eventstore: scan heads: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		chain := string(it.Key()[1:])
		head, err := decodeHead(it.Value())
		if err != nil {
			return fmt.Errorf("eventstore: chain %s: %w", chain, err)
		}
		last, ok, err := s.lastStored(chain)
		if err != nil {
			return err
		}
		switch {
		case !ok && head.Seq != 0:
			return fmt.Errorf("%w: chain %s head says seq %d hash %x, but the chain has no records", ErrHeadMismatch, chain, head.Seq, head.Hash)
		case ok && (last.Seq != head.Seq || last.Hash != head.Hash):
			return fmt.Errorf("%w: chain %s head says seq %d hash %x, last record is seq %d hash %x", ErrHeadMismatch, chain, head.Seq, head.Hash, last.Seq, last.Hash)
		}
		if treeOn {
			if err := s.checkTree(chain, head); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if !treeOn {
		return nil
	}
	return s.checkCheckpoints()
}

// checkChainsHaveHeads walks the chains that have records (one seek per
// chain) and fails with ErrHeadMismatch for any without a head.
func (s *Store) checkChainsHaveHeads() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindRecord}, UpperBound: []byte{kindRecord + 1}})
	if err != nil {
		return fmt.Errorf("eventstore: scan chains: %w", err)
	}
	defer it.Close()
	for valid := it.First(); valid; {
		key := it.Key()
		end := bytes.IndexByte(key[1:], 0x00)
		if end < 0 {
			return fmt.Errorf("%w: unexpected record key %x", ErrMalformedRecord, key)
		}
		chain := string(key[1 : 1+end])
		_, closer, err := s.db.Get(HeadKey(chain))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			return fmt.Errorf("%w: chain %s has records but no head (deleted or never written)", ErrHeadMismatch, chain)
		case err != nil:
			return fmt.Errorf("eventstore: read head of %s: %w", chain, err)
		}
		_ = closer.Close()
		next := append(append([]byte{kindRecord}, chain...), 0x01)
		valid = it.SeekGE(next)
	}
	return it.Error()
}

// lastStored returns the last record physically present in chain.
func (s *Store) lastStored(chain string) (Record, bool, error) {
	lo, hi := RecordKey(chain, 0), RecordKey(chain, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: append(hi, 0)})
	if err != nil {
		return Record{}, false, fmt.Errorf("eventstore: chain %s: %w", chain, err)
	}
	defer it.Close()
	if !it.Last() {
		return Record{}, false, it.Error()
	}
	v, err := ParseStored(it.Value())
	if err != nil {
		return Record{}, false, fmt.Errorf("eventstore: chain %s last record: %w", chain, err)
	}
	return v.Record(), true, nil
}

// Close stops accepting appends, commits everything already queued, stops
// publishing and closes Pebble. Waiting callers get their results before
// Close returns. Once the log has failed, Close gives up after a few seconds
// (a failed Pebble may never finish closing) and says it left the database
// open. Safe to call more than once; later calls return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			close(s.stopWatch)
			<-s.watchDone
		}
		s.closeErr = closeBounded("log", s.failedCh, s.close)
	})
	return s.closeErr
}

// close is Close without its bound.
func (s *Store) close() error {
	s.mu.Lock()
	s.closed = true
	writers := make([]*chainWriter, 0, len(s.writers))
	for _, w := range s.writers {
		writers = append(writers, w)
	}
	s.mu.Unlock()
	for _, w := range writers {
		w.stop()
	}
	if s.pub != nil {
		s.pub.stop()
	}
	// Wait for running reads; later ones see readClosed and get ErrClosed.
	s.readers.Lock()
	s.readClosed = true
	s.readers.Unlock()
	return errors.Join(s.closeAux(), recoverFatal(s.db.Close))
}

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }

// Failed returns the error that made the store fail-stop, or nil.
func (s *Store) Failed() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Enqueue sequences drafts as the next records of chain and queues them for
// the next group commit. Records of one call are contiguous, and calls
// serialized by the caller get increasing seqs in call order. It blocks only
// when MaxPending Pendings are already queued (until ctx is done). The records
// are not durable until Pending.Wait returns without error. With
// Options.TracerProvider, the span context in ctx (if any) is linked from
// the span of the commit that carries these records.
func (s *Store) Enqueue(ctx context.Context, chain string, drafts ...Draft) (*Pending, error) {
	if len(drafts) == 0 {
		return nil, ErrEmptyAppend
	}
	w, err := s.writer(chain)
	if err != nil {
		return nil, err
	}
	return w.enqueue(ctx, drafts)
}

// Append enqueues drafts and waits until they are durable. It returns the
// records with their seq, id, time and hashes. If ctx ends first, Append
// returns ctx.Err() and the records may or may not be committed.
func (s *Store) Append(ctx context.Context, chain string, drafts ...Draft) ([]Record, error) {
	p, err := s.Enqueue(ctx, chain, drafts...)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

func (s *Store) writer(chain string) (*chainWriter, error) {
	if s.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if err := s.Failed(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return nil, ErrClosed
		}
		w, ok := s.writers[chain]
		if !ok {
			break
		}
		if !w.isFenced() {
			return w, nil
		}
		// A writer that stepped down finishes its last commit before a
		// fresh one reads the stored head; its run never takes s.mu.
		s.mu.Unlock()
		<-w.stopped
		s.mu.Lock()
		if s.writers[chain] == w {
			delete(s.writers, chain)
		}
	}
	if err := ValidateChain(chain); err != nil {
		return nil, err
	}
	last, ok, err := s.lastStored(chain)
	if err != nil {
		return nil, err
	}
	if !ok {
		last = Record{}
	}
	w, err := newChainWriter(s, chain, last)
	if err != nil {
		return nil, err
	}
	s.writers[chain] = w
	return w, nil
}

// fail records the first commit failure; every later append is refused.
func (s *Store) fail(err error) error {
	wrapped := fmt.Errorf("%w: %w", ErrStoreFailed, err)
	if s.failed.CompareAndSwap(nil, &wrapped) {
		close(s.failedCh)
		s.opts.Logger.Error("event store failed; refusing appends until reopened", "err", err)
		return wrapped
	}
	return *s.failed.Load()
}

// beginRead returns ErrClosed once the store is closed; otherwise the caller
// must call s.readers.RUnlock when done.
func (s *Store) beginRead() error {
	s.readers.RLock()
	if s.readClosed {
		s.readers.RUnlock()
		return ErrClosed
	}
	return nil
}

// Head returns the last durable record's seq and hash. An empty chain has the
// zero Head.
func (s *Store) Head(chain string) (Head, error) {
	if err := s.beginRead(); err != nil {
		return Head{}, err
	}
	defer s.readers.RUnlock()
	s.mu.Lock()
	w := s.writers[chain]
	s.mu.Unlock()
	if w != nil {
		return w.durableHead(), nil
	}
	v, closer, err := s.db.Get(HeadKey(chain))
	if errors.Is(err, pebble.ErrNotFound) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("eventstore: read head of %s: %w", chain, err)
	}
	defer closer.Close()
	return decodeHead(v)
}

// visibleTo returns the highest seq a reader may see: the durable head for a
// chain being written, everything on disk otherwise.
func (s *Store) visibleTo(chain string) uint64 {
	s.mu.Lock()
	w := s.writers[chain]
	s.mu.Unlock()
	if w != nil {
		return w.durableHead().Seq
	}
	return math.MaxUint64
}

// Get returns the durable record seq of chain, or ErrNotFound.
func (s *Store) Get(ctx context.Context, chain string, seq uint64) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := s.beginRead(); err != nil {
		return Record{}, err
	}
	defer s.readers.RUnlock()
	if seq == 0 {
		return Record{}, fmt.Errorf("%w: chain %s seq %d", ErrNotFound, chain, seq)
	}
	// Read first, then ask how far the chain is durable: asked first, a
	// chain with no writer yet would allow everything, and a writer
	// created in between could have put a record in the memtable that is
	// not durable yet.
	v, closer, err := s.db.Get(RecordKey(chain, seq))
	if errors.Is(err, pebble.ErrNotFound) || err == nil && seq > s.visibleTo(chain) {
		if err == nil {
			_ = closer.Close()
		}
		return Record{}, fmt.Errorf("%w: chain %s seq %d", ErrNotFound, chain, seq)
	}
	if err != nil {
		return Record{}, fmt.Errorf("eventstore: get %s/%d: %w", chain, seq, err)
	}
	defer closer.Close()
	view, err := ParseStored(v)
	if err != nil {
		return Record{}, fmt.Errorf("eventstore: get %s/%d: %w", chain, seq, err)
	}
	return view.Record(), nil
}

// Scan calls fn for every record of chain with from <= seq <= to, in seq
// order, with the seq from its key and the stored bytes (see ParseStored).
// stored is valid only during the call; fn must copy what it keeps. Scan never
// shows a record that a writer of this Store has not yet made durable; on a
// store no one writes (read-only), it shows everything on disk, including
// records past the head. An error from fn stops the scan and is returned.
func (s *Store) Scan(ctx context.Context, chain string, from, to uint64, fn func(seq uint64, stored []byte) error) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.readers.RUnlock()
	if from == 0 {
		from = 1
	}
	if from > to {
		return nil
	}
	upper := RecordKey(chain, to)
	if to == math.MaxUint64 {
		upper = append(upper, 0)
	} else {
		upper = RecordKey(chain, to+1)
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: RecordKey(chain, from), UpperBound: upper})
	if err != nil {
		return fmt.Errorf("eventstore: scan %s: %w", chain, err)
	}
	defer it.Close()
	// The iterator reads the database as it was when it was created; how
	// far the chain is durable is asked after that, so it covers every
	// record the iterator can see that a writer of this Store has made
	// durable, and none that it has not (see Get).
	limit := s.visibleTo(chain)
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		seq, ok := seqFromRecordKey(chain, it.Key())
		if !ok {
			return fmt.Errorf("%w: unexpected key %x in chain %s", ErrMalformedRecord, it.Key(), chain)
		}
		if seq > limit {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("eventstore: scan %s seq %d: %w", chain, seq, err)
		}
		if err := fn(seq, v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("eventstore: scan %s: %w", chain, err)
	}
	return nil
}

// Records calls fn with a copy of every durable record of chain with
// from <= seq <= to (to 0 means no upper bound), in order. Records that do not
// parse stop the scan with an error wrapping ErrMalformedRecord.
func (s *Store) Records(ctx context.Context, chain string, from, to uint64, fn func(Record) error) error {
	if to == 0 {
		to = math.MaxUint64
	}
	return s.Scan(ctx, chain, from, to, func(seq uint64, stored []byte) error {
		v, err := ParseStored(stored)
		if err != nil {
			return fmt.Errorf("chain %s seq %d: %w", chain, seq, err)
		}
		return fn(v.Record())
	})
}

// Checkpoint writes a consistent copy of the store into dir, which must not
// exist, while writers keep going. The copy opens like any store.
func (s *Store) Checkpoint(dir string) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.readers.RUnlock()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("eventstore: checkpoint to %s: %w", dir, err)
	}
	return nil
}

// applyNoSyncWait writes b to the WAL and memtable with pebble.Sync without
// waiting for the fsync (the caller calls b.SyncWait), and converts a Pebble
// fatal error into an ordinary error.
func applyNoSyncWait(db *pebble.DB, b *pebble.Batch) error {
	return recoverFatal(func() error { return db.ApplyNoSyncWait(b, pebble.Sync) })
}
