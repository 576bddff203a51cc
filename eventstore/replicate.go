package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// ErrFenced means a chain's writer stepped down: its commit was refused
// (another writer appended to the chain first, see Replicator) or records
// sequenced elsewhere arrived through Ingest while it had its own in
// flight. The Pendings it held fail with it and none of their records is
// durable through this writer; the next Enqueue starts a fresh writer from
// the stored head. It is retryable and does not fail the store.
var ErrFenced = errors.New("eventstore: chain writer fenced, another writer appended first")

// ErrIngestBusy means Ingest found this store's own records in flight on
// the chain; retry once they are committed or fenced.
var ErrIngestBusy = errors.New("eventstore: chain has local records in flight")

// Replicator makes a group commit durable somewhere else before the store
// applies it locally (eventstore/jetstream publishes it to a JetStream
// stream). With Options.Replicator set, the sequencer of chain calls
// Replicate with each group commit, in seq order, one at a time: stored
// are the stored bytes (see ParseStored) of records first to
// first+len(stored)-1, note the signed checkpoint of the new tree size
// (nil without a Signer). Replicate returns nil only once the batch is
// durable by the replicator's own rule; then the store writes it to Pebble
// and answers the Pendings. Any error fails the group's Pendings and every
// later one queued behind it with ErrFenced (wrapping the error), and the
// chain's writer steps down; the store itself does not fail. Whether a
// failed batch was written is the replicator's to say (Ingest brings in
// what was). Replicate must not call the Store.
type Replicator interface {
	Replicate(ctx context.Context, chain string, first uint64, stored [][]byte, note []byte) error
}

// Ingest appends records that were sequenced elsewhere (by another
// store's writer, read back from the replicator) as chain's next records:
// stored are their stored bytes, in seq order, and note is the signed
// checkpoint written with them, or nil. Each record must parse, carry its
// own hash, name chain, follow the current head (seq and prev hash) and
// not go back in time; the note, if the store has a Signer, must verify
// with its key and sign exactly the tree these records end. A record that
// breaks a rule fails with ErrMalformedRecord or ErrCheckpointMismatch and
// nothing is appended. ErrIngestBusy means this store's own records are in
// flight on chain (retry). The returned Pending completes once the records
// are in Pebble (synced); Ingest never calls the Replicator.
func (s *Store) Ingest(ctx context.Context, chain string, stored [][]byte, note []byte) (*Pending, error) {
	if len(stored) == 0 {
		return nil, ErrEmptyAppend
	}
	p := &Pending{
		records:  make([]Record, len(stored)),
		stored:   make([][]byte, len(stored)),
		done:     make(chan struct{}),
		ingested: true,
	}
	if len(note) > 0 {
		p.note = cloneBytes(note)
	}
	for i, b := range stored {
		v, err := ParseStored(b)
		if err != nil {
			return nil, fmt.Errorf("eventstore: ingest into %s: %w", chain, err)
		}
		r := v.Record()
		if r.Chain != chain {
			return nil, fmt.Errorf("%w: ingest into %s: record %d names chain %q", ErrMalformedRecord, chain, r.Seq, r.Chain)
		}
		if r.ComputeHash() != r.Hash {
			return nil, fmt.Errorf("%w: ingest into %s: record %d does not carry its own hash", ErrMalformedRecord, chain, r.Seq)
		}
		if i > 0 && (r.Seq != p.records[i-1].Seq+1 || r.PrevHash != p.records[i-1].Hash) {
			return nil, fmt.Errorf("%w: ingest into %s: record %d does not follow record %d", ErrMalformedRecord, chain, r.Seq, p.records[i-1].Seq)
		}
		p.records[i] = r
		p.stored[i] = cloneBytes(b)
	}
	w, err := s.writer(chain)
	if err != nil {
		return nil, err
	}
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := w.ingest(p); err != nil {
		<-w.slots
		return nil, err
	}
	return p, nil
}

// ingest queues p, whose records are checked among themselves, after the
// writer's head.
func (w *chainWriter) ingest(p *Pending) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refusing(); err != nil {
		return err
	}
	if w.next != w.durable {
		return fmt.Errorf("%w: chain %s sequenced to %d, durable to %d", ErrIngestBusy, w.chain, w.next.Seq, w.durable.Seq)
	}
	// Records the chain holds already (this store committed them itself)
	// are dropped, once the last of them is the head.
	if first, last := p.records[0].Seq, p.records[len(p.records)-1].Seq; first <= w.next.Seq {
		n := uint64(len(p.records))
		if last >= w.next.Seq {
			n = w.next.Seq - first + 1
			if p.records[n-1].Hash != w.next.Hash {
				return fmt.Errorf("%w: ingest into %s: record %d is not the chain's (a fork)", ErrMalformedRecord, w.chain, w.next.Seq)
			}
		}
		p.records, p.stored = p.records[n:], p.stored[n:]
		if len(p.records) == 0 {
			p.complete(nil)
			<-w.slots
			return nil
		}
	}
	first, last := p.records[0], p.records[len(p.records)-1]
	if first.Seq != w.next.Seq+1 || first.PrevHash != w.next.Hash {
		return fmt.Errorf("%w: ingest into %s: record %d (prev %x) does not follow head %d (%x)", ErrMalformedRecord, w.chain, first.Seq, first.PrevHash[:4], w.next.Seq, w.next.Hash[:4])
	}
	lastTime := w.lastTime
	for _, r := range p.records {
		if r.Time.UnixNano() < lastTime {
			return fmt.Errorf("%w: ingest into %s: record %d goes back in time", ErrMalformedRecord, w.chain, r.Seq)
		}
		lastTime = r.Time.UnixNano()
	}
	w.next, w.lastTime = Head{Seq: last.Seq, Hash: last.Hash}, lastTime
	w.queue = append(w.queue, p)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// refusing returns why the writer takes no records, or nil. Called with mu
// held.
func (w *chainWriter) refusing() error {
	switch {
	case w.fenced != nil:
		return w.fenced
	case w.stopping:
		return ErrClosed
	}
	return w.store.Failed()
}

// fence makes the writer step down after err: group and everything still
// queued fail with ErrFenced, the writer refuses new records and its run
// ends; the store's next call for chain starts a fresh writer.
func (w *chainWriter) fence(group []*Pending, err error) {
	if !errors.Is(err, ErrFenced) {
		err = fmt.Errorf("%w: %w", ErrFenced, err)
	}
	w.mu.Lock()
	queued := w.queue
	w.queue = nil
	if w.fenced == nil && !w.stopping {
		w.fenced = err
		w.stopping = true
		close(w.wake)
	}
	w.mu.Unlock()
	w.store.opts.Logger.Warn("chain writer stepped down", "chain", w.chain, "err", err)
	w.finish(group, err)
	w.finish(queued, err)
}

// isFenced reports whether the writer stepped down.
func (w *chainWriter) isFenced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fenced != nil
}
