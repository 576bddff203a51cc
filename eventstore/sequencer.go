package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Pending is a group of records that have been sequenced but may not be
// durable yet. Wait blocks until they are.
type Pending struct {
	records []Record
	stored  [][]byte
	done    chan struct{}
	err     error
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

	wake    chan struct{}
	stopped chan struct{}
}

func newChainWriter(s *Store, chain string, last Record) *chainWriter {
	w := &chainWriter{
		store:    s,
		chain:    chain,
		startSeq: last.Seq,
		slots:    make(chan struct{}, s.opts.MaxPending),
		next:     Head{Seq: last.Seq, Hash: last.Hash},
		durable:  Head{Seq: last.Seq, Hash: last.Hash},
		entropy:  ulid.Monotonic(s.opts.Entropy, 0),
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	if last.Seq > 0 {
		w.lastTime = last.Time.UnixNano()
	}
	go w.run()
	return w
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
	p, err := w.sequence(drafts)
	if err != nil {
		<-w.slots
		return nil, err
	}
	return p, nil
}

func (w *chainWriter) sequence(drafts []Draft) (*Pending, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return nil, ErrClosed
	}
	if err := w.store.Failed(); err != nil {
		return nil, err
	}
	p := &Pending{
		records: make([]Record, len(drafts)),
		stored:  make([][]byte, len(drafts)),
		done:    make(chan struct{}),
	}
	for i, d := range drafts {
		t := d.Time
		if t.IsZero() {
			t = w.store.opts.Clock()
		}
		ns := t.UnixNano()
		if ns < w.lastTime {
			ns = w.lastTime
		}
		id, err := ulid.New(uint64(ns/int64(time.Millisecond)), w.entropy)
		if err != nil {
			return nil, fmt.Errorf("eventstore: new record id: %w", err)
		}
		r := &p.records[i]
		*r = Record{
			Chain:       w.chain,
			Seq:         w.next.Seq + 1,
			ID:          id.String(),
			Time:        time.Unix(0, ns).UTC(),
			Type:        d.Type,
			Actor:       d.Actor,
			Payload:     cloneBytes(d.Payload),
			PrevHash:    w.next.Hash,
			HashVersion: HashVersion,
		}
		buf := r.Encode(make([]byte, 0, r.encodedSize()+HashSize))
		r.Hash = LeafHash(buf)
		p.stored[i] = append(buf, r.Hash[:]...)
		w.next = Head{Seq: r.Seq, Hash: r.Hash}
		w.lastTime = ns
	}
	w.queue = append(w.queue, p)
	select { // under mu, so stop cannot close wake concurrently
	case w.wake <- struct{}{}:
	default:
	}
	return p, nil
}

// run commits queued Pendings until stop. Everything queued when commit
// starts goes into one batch (up to MaxBatchRecords), so concurrent writers
// share one fsync.
func (w *chainWriter) run() {
	defer close(w.stopped)
	var spare []*Pending
	for {
		_, open := <-w.wake
		for {
			w.mu.Lock()
			group := w.takeGroup(&spare)
			w.mu.Unlock()
			if len(group) == 0 {
				break
			}
			w.commit(group)
			for range group {
				<-w.slots
			}
			clear(group)
			spare = group[:0]
		}
		if !open {
			return
		}
	}
}

// takeGroup removes up to MaxBatchRecords records' worth of Pendings from the
// queue. Called with mu held.
func (w *chainWriter) takeGroup(spare *[]*Pending) []*Pending {
	if len(w.queue) == 0 {
		return nil
	}
	n, records := 0, 0
	for n < len(w.queue) {
		records += len(w.queue[n].records)
		n++
		if records >= w.store.opts.MaxBatchRecords {
			break
		}
	}
	group := append((*spare)[:0], w.queue[:n]...)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return group
}

func (w *chainWriter) commit(group []*Pending) {
	if err := w.store.Failed(); err != nil {
		for _, p := range group {
			p.complete(err)
		}
		return
	}
	b := w.store.db.NewBatch()
	defer b.Close()
	key := make([]byte, 0, 1+len(w.chain)+1+8)
	var last Head
	records := 0
	for _, p := range group {
		for i := range p.records {
			key = appendRecordKey(key[:0], w.chain, p.records[i].Seq)
			if err := b.Set(key, p.stored[i], nil); err != nil {
				w.failGroup(group, err)
				return
			}
			last = Head{Seq: p.records[i].Seq, Hash: p.records[i].Hash}
			records++
		}
	}
	if err := b.Set(HeadKey(w.chain), encodeHead(last), nil); err != nil {
		w.failGroup(group, err)
		return
	}
	start := time.Now()
	if err := commitBatch(b); err != nil {
		w.failGroup(group, fmt.Errorf("commit chain %s through seq %d: %w", w.chain, last.Seq, err))
		return
	}
	took := time.Since(start)
	w.mu.Lock()
	w.durable = last
	w.mu.Unlock()
	for _, p := range group {
		p.complete(nil)
	}
	if obs := w.store.opts.CommitObserver; obs != nil {
		obs(records, took)
	}
	if w.store.pub != nil {
		w.store.pub.notify()
	}
}

// failGroup fail-stops the store and fails group; run then fails everything
// still queued because the store has failed.
func (w *chainWriter) failGroup(group []*Pending, err error) {
	err = w.store.fail(err)
	for _, p := range group {
		p.complete(err)
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
