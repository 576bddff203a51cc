package eventstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/oklog/ulid/v2"
)

// Pending is a group of records that have been sequenced but may not be
// durable yet. Wait blocks until they are.
type Pending struct {
	records []Record
	stored  [][]byte
	done    chan struct{}
	err     error
	// caller is the span context of the Enqueue call, linked from the
	// commit span; zero without tracing.
	caller trace.SpanContext
	// ingested marks records sequenced elsewhere (Store.Ingest): they are
	// committed as they are, never replicated, and note is the signed
	// checkpoint that came with them.
	ingested bool
	note     []byte
}

// Records returns the sequenced records (seq, id, time, hashes assigned).
// They are not durable until Wait returns without error; do not modify them.
func (p *Pending) Records() []Record { return p.records }

// Wait blocks until the records are durable or their commit failed. If ctx
// ends first it returns ctx.Err(); the records may still be committed.
func (p *Pending) Wait(ctx context.Context) ([]Record, error) {
	select {
	case <-p.done:
		if p.err != nil {
			return nil, p.err
		}
		return p.records, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed once the records are durable or failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err returns the commit result after Done is closed.
func (p *Pending) Err() error { return p.err }

func (p *Pending) complete(err error) {
	p.err = err
	p.stored = nil
	close(p.done)
}

// chainWriter is the sequencer of one chain: enqueue links records in call
// order under mu; run, its single goroutine, commits the queue in groups.
type chainWriter struct {
	store *Store
	chain string
	slots chan struct{} // one token per queued Pending: backpressure
	// startSeq is the head when the writer was created; later records are
	// this process's to publish.
	startSeq uint64

	mu       sync.Mutex
	next     Head  // last sequenced record
	lastTime int64 // unix ns of the last sequenced record
	entropy  *ulid.MonotonicEntropy
	queue    []*Pending
	stopping bool
	durable  Head
	// fenced is why the writer stepped down (ErrFenced), or nil.
	fenced error

	// checkpoint is the latest signed checkpoint whose batch is durable.
	checkpoint []byte

	wake    chan struct{}
	stopped chan struct{}

	// Owned by run: the Merkle tree over everything applied, and the
	// bookkeeping of which checkpoints are kept.
	tree       *compact.Range
	cache      *treeCache // the store's cache of this chain's upper tree levels
	prevCP     uint64     // size of the latest checkpoint written, 0 if none
	prevKept   bool       // whether it stays when the next one is written
	lastKeptAt time.Time  // when the latest kept checkpoint was written
}

func newChainWriter(s *Store, chain string, last Record) (*chainWriter, error) {
	tree := treeFactory.NewEmptyRange(0) // the measuring build without a tree (tree_off.go) keeps it empty
	if treeOn {
		var err error
		if tree, err = loadRange(s.db, chain, last.Seq); err != nil {
			return nil, fmt.Errorf("eventstore: load merkle tree of %s at %d: %w", chain, last.Seq, err)
		}
	}
	cpSize, cp, err := s.latestCheckpoint(chain)
	if err != nil {
		return nil, err
	}
	w := &chainWriter{
		tree:       tree,
		cache:      s.treeCache(chain),
		checkpoint: cp,
		prevCP:     cpSize,
		prevKept:   true,
		store:      s,
		chain:      chain,
		startSeq:   last.Seq,
		slots:      make(chan struct{}, s.opts.MaxPending),
		next:       Head{Seq: last.Seq, Hash: last.Hash},
		durable:    Head{Seq: last.Seq, Hash: last.Hash},
		entropy:    ulid.Monotonic(s.opts.Entropy, 0),
		wake:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
	}
	if last.Seq > 0 {
		w.lastTime = last.Time.UnixNano()
	}
	go w.run()
	return w, nil
}

func (w *chainWriter) durableHead() Head {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

func (w *chainWriter) enqueue(ctx context.Context, drafts []Draft) (*Pending, error) {
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var caller trace.SpanContext
	if w.store.tracer != nil {
		caller = trace.SpanContextFromContext(ctx)
	}
	p, err := w.sequence(drafts, caller)
	if err != nil {
		<-w.slots
		return nil, err
	}
	return p, nil
}

func (w *chainWriter) sequence(drafts []Draft, caller trace.SpanContext) (*Pending, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refusing(); err != nil {
		return nil, err
	}
	p := &Pending{
		records: make([]Record, len(drafts)),
		stored:  make([][]byte, len(drafts)),
		done:    make(chan struct{}),
		caller:  caller,
	}
	// Link into locals and move the writer's head only once every draft is
	// sequenced, so a failure part-way leaves no gap in the chain.
	next, lastTime := w.next, w.lastTime
	for i, d := range drafts {
		t := d.Time
		if t.IsZero() {
			t = w.store.opts.Clock()
		}
		ns := t.UnixNano()
		if ns < lastTime {
			ns = lastTime
		}
		id, err := ulid.New(uint64(ns/int64(time.Millisecond)), w.entropy)
		if err != nil {
			return nil, fmt.Errorf("eventstore: new record id: %w", err)
		}
		r := &p.records[i]
		*r = Record{
			Chain:       w.chain,
			Seq:         next.Seq + 1,
			ID:          id.String(),
			Time:        time.Unix(0, ns).UTC(),
			Type:        d.Type,
			Actor:       d.Actor,
			Payload:     cloneBytes(d.Payload),
			PrevHash:    next.Hash,
			HashVersion: HashVersion,
		}
		buf := r.Encode(make([]byte, 0, r.encodedSize()+HashSize))
		r.Hash = LeafHash(buf)
		p.stored[i] = append(buf, r.Hash[:]...)
		next = Head{Seq: r.Seq, Hash: r.Hash}
		lastTime = ns
	}
	w.next, w.lastTime = next, lastTime
	w.queue = append(w.queue, p)
	select { // under mu, so stop cannot close wake concurrently
	case w.wake <- struct{}{}:
	default:
	}
	return p, nil
}

// run applies queued Pendings to Pebble until stop, and hands each applied
// batch to complete, which waits for its fsync. Everything queued when a
// batch is built goes into it (up to MaxBatchRecords), and the next batch is
// applied while the previous one is still syncing, so Pebble's WAL writer
// folds both into one fsync: concurrent writers share fsyncs even when the
// queue refills in several waves.
func (w *chainWriter) run() {
	defer close(w.stopped)
	inflight := make(chan applied, 1)
	completed := make(chan struct{})
	go w.complete(inflight, completed)
	defer func() {
		close(inflight)
		<-completed
	}()
	for {
		_, open := <-w.wake
		for {
			w.settle()
			w.mu.Lock()
			group := w.takeGroup()
			w.mu.Unlock()
			if len(group) == 0 {
				break
			}
			if a, ok := w.apply(group); ok {
				inflight <- a
			}
		}
		if !open {
			return
		}
	}
}

// settle yields while the queue is still growing (a few times at most), so
// that writers woken by the last commit can join the next batch instead of
// each starting a batch of its own. With one writer it costs one yield.
func (w *chainWriter) settle() {
	last := -1
	for range 8 {
		w.mu.Lock()
		n := len(w.queue)
		w.mu.Unlock()
		if n == last || n >= w.store.opts.MaxBatchRecords {
			return
		}
		last = n
		runtime.Gosched()
	}
}

// applied is a batch written to Pebble's WAL and memtable whose fsync may
// still be pending.
type applied struct {
	batch *pebble.Batch
	group []*Pending
	last  Head
	n     int
	start time.Time
	// checkpoint is the signed checkpoint of last.Seq written in batch,
	// or nil without a signer.
	checkpoint []byte
	// span traces the commit (startCommitSpan); nil without a tracer.
	span trace.Span
}

// takeGroup removes up to MaxBatchRecords records' worth of Pendings from the
// queue, all sequenced here or all ingested. Called with mu held.
func (w *chainWriter) takeGroup() []*Pending {
	if len(w.queue) == 0 {
		return nil
	}
	n, records := 0, 0
	for n < len(w.queue) {
		if w.queue[n].ingested != w.queue[0].ingested {
			break
		}
		records += len(w.queue[n].records)
		n++
		if records >= w.store.opts.MaxBatchRecords {
			break
		}
	}
	group := make([]*Pending, n)
	copy(group, w.queue)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return group
}

// apply writes group, the Merkle tree hashes its records complete, the
// new chain head and (with a signer) the signed checkpoint of the new tree
// size in one batch with ApplyNoSyncWait. On failure it fails the group and
// returns false; the store is failed then, so w.tree running ahead of the
// disk does no harm.
func (w *chainWriter) apply(group []*Pending) (applied, bool) {
	if err := w.store.Failed(); err != nil {
		w.finish(group, err)
		return applied{}, false
	}
	b := w.store.db.NewBatch()
	key := make([]byte, 0, 1+len(w.chain)+1+8)
	a := applied{batch: b, group: group, start: time.Now()}
	var setErr error
	// Cached tree hashes go in only once the batch is sure to be applied:
	// a replicator may still refuse it.
	type node struct {
		id   compact.NodeID
		hash []byte
	}
	var cached []node
	storeNode := func(id compact.NodeID, hash []byte) {
		if setErr == nil {
			key = appendTreeKey(key[:0], w.chain, storedIndex(id))
			setErr = b.Set(key, hash, nil)
			if id.Level >= cacheLevel {
				cached = append(cached, node{id, hash})
			}
		}
	}
	fail := func(err error) (applied, bool) {
		_ = b.Close()
		w.finish(group, w.store.fail(err))
		return applied{}, false
	}
	for _, p := range group {
		for i := range p.records {
			r := &p.records[i]
			key = appendRecordKey(key[:0], w.chain, r.Seq)
			if err := b.Set(key, p.stored[i], nil); err != nil {
				return fail(err)
			}
			// compact.Range keeps the slice it is given: give it its own
			// copy, not one into records the callers hold.
			if treeOn {
				leaf := r.Hash
				if err := w.tree.Append(leaf[:], storeNode); err != nil {
					return fail(fmt.Errorf("extend merkle tree of %s at %d: %w", w.chain, r.Seq, err))
				}
				if setErr != nil {
					return fail(setErr)
				}
			}
			a.last = Head{Seq: r.Seq, Hash: r.Hash}
			a.n++
		}
	}
	if err := b.Set(HeadKey(w.chain), encodeHead(a.last), nil); err != nil {
		return fail(err)
	}
	ingested := group[0].ingested
	if signer := w.store.opts.Signer; signer != nil && treeOn {
		root, err := rangeRoot(w.tree)
		if err != nil {
			return fail(err)
		}
		th := TreeHead{Size: a.last.Seq, Root: root}
		if ingested {
			if a.checkpoint, err = w.store.checkIngested(w.chain, group[len(group)-1].note, th); err != nil {
				_ = b.Close()
				w.fence(group, err)
				return applied{}, false
			}
		} else if a.checkpoint, err = w.store.signCheckpoint(w.chain, th); err != nil {
			return fail(err)
		}
		if err := b.Set(CheckpointKey(w.chain, a.last.Seq), a.checkpoint, nil); err != nil {
			return fail(err)
		}
		// Keep one checkpoint per CheckpointKeepEvery (and always the
		// latest): the one before is dropped unless it was kept.
		if w.prevCP > 0 && !w.prevKept {
			if err := b.Delete(CheckpointKey(w.chain, w.prevCP), nil); err != nil {
				return fail(err)
			}
		}
		w.prevCP, w.prevKept = a.last.Seq, false
		if now := time.Now(); now.Sub(w.lastKeptAt) >= w.store.opts.CheckpointKeepEvery || now.Before(w.lastKeptAt) {
			w.prevKept, w.lastKeptAt = true, now
		}
	}
	if w.store.tracer != nil {
		a.span = w.startCommitSpan(a) // nil when no caller is sampled
	}
	if rep := w.store.opts.Replicator; rep != nil && !ingested {
		stored := make([][]byte, 0, a.n)
		for _, p := range group {
			stored = append(stored, p.stored...)
		}
		if err := rep.Replicate(context.Background(), w.chain, group[0].records[0].Seq, stored, a.checkpoint); err != nil {
			_ = b.Close()
			endSpan(a.span, err)
			w.fence(group, err)
			return applied{}, false
		}
	}
	for _, n := range cached {
		w.cache.putNode(n.id, n.hash)
	}
	if err := applyNoSyncWait(w.store.db, b); err != nil {
		err = w.store.fail(fmt.Errorf("commit chain %s through seq %d: %w", w.chain, a.last.Seq, err))
		endSpan(a.span, err)
		w.finish(group, err)
		return applied{}, false
	}
	return a, true
}

// complete waits for each applied batch's fsync, in apply order, and only
// then moves the durable head and answers the waiting callers. After the
// first failure every later batch fails too (fail-stop): it is not trusted
// even if its own fsync reports success.
func (w *chainWriter) complete(inflight <-chan applied, done chan<- struct{}) {
	defer close(done)
	for a := range inflight {
		w.completeOne(a)
	}
}

// completeOne waits for a's fsync, then moves the durable head and answers
// a's callers, or fails them.
func (w *chainWriter) completeOne(a applied) {
	var fsync trace.Span
	if a.span != nil {
		_, fsync = w.store.tracer.Start(trace.ContextWithSpan(context.Background(), a.span), "fsync")
	}
	err := a.batch.SyncWait()
	if fsync != nil {
		fsync.End()
	}
	if err != nil {
		err = w.store.fail(fmt.Errorf("sync chain %s through seq %d: %w", w.chain, a.last.Seq, err))
	} else {
		err = w.store.Failed()
	}
	_ = a.batch.Close()
	endSpan(a.span, err)
	if err != nil {
		w.finish(a.group, err)
		return
	}
	took := time.Since(a.start)
	w.mu.Lock()
	w.durable = a.last
	if a.checkpoint != nil {
		w.checkpoint = a.checkpoint
	}
	w.mu.Unlock()
	w.finish(a.group, nil)
	if obs := w.store.opts.CommitObserver; obs != nil {
		obs(a.n, took)
	}
	if w.store.pub != nil {
		w.store.pub.notify()
	}
}

// finish completes group with err and releases its backpressure slots.
func (w *chainWriter) finish(group []*Pending, err error) {
	for _, p := range group {
		p.complete(err)
		<-w.slots
	}
}

// stop refuses new records, lets run commit everything queued, and waits.
func (w *chainWriter) stop() {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	w.stopping = true
	close(w.wake)
	w.mu.Unlock()
	<-w.stopped
}

// tracerName names the eventstore's tracer (instrumentation scope).
const tracerName = "github.com/custos-dev/custos/eventstore"

// startCommitSpan starts the span of the group commit a, back-dated to when
// its batch was started, as a new root linked to every sampled caller it
// carries: one commit serves many requests, so it is a child of none. An
// unsampled caller is not linked: its span is never exported, and the
// link would only cost the commit span memory and export bytes. A commit
// that carries no sampled caller gets no span (nil): nothing would lead
// to it, and under head sampling most commits carry none (the commit
// durations of all are the custos_fsync_duration_seconds metric).
func (w *chainWriter) startCommitSpan(a applied) trace.Span {
	sampled := 0
	for _, p := range a.group {
		if p.caller.IsSampled() {
			sampled++
		}
	}
	if sampled == 0 {
		return nil
	}
	links := make([]trace.Link, 0, sampled) // one allocation, however many
	for _, p := range a.group {
		if p.caller.IsSampled() {
			links = append(links, trace.Link{SpanContext: p.caller})
		}
	}
	first := a.group[0].records[0].Seq
	_, span := w.store.tracer.Start(context.Background(), "eventstore commit",
		trace.WithNewRoot(), trace.WithTimestamp(a.start), trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("custos.chain", w.chain),
			attribute.Int("custos.commit.records", a.n),
			attribute.Int("custos.commit.pendings", len(a.group)),
			attribute.Int64("custos.commit.first_seq", int64(first)),
			attribute.Int64("custos.commit.last_seq", int64(a.last.Seq)),
		))
	return span
}

// endSpan ends span (if any), marking it failed with err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
