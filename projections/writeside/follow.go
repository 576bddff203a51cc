package writeside

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/replay"
)

// Following a chain sequenced elsewhere
//
// On a node of a cluster (eventstore/jetstream) the chain may be
// sequenced by another node, whose records reach this node's store
// through eventstore.Store.Ingest, behind the Ledger's back. CatchUp folds
// them in; Rebuild starts the state over from the store after a batch this
// Ledger applied was refused (eventstore.ErrFenced), since the live state
// then holds events the log does not.

// Chain returns the chain this Ledger projects.
func (l *Ledger) Chain() string { return l.cfg.Chain }

// Applied returns the last record folded into the live state: sequenced by
// this Ledger (perhaps not yet durable) or folded in by CatchUp.
func (l *Ledger) Applied() eventstore.Head {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last
}

// CatchUp folds into the live state the durable records of the chain after
// the last one it holds, and returns the new last one. It rebuilds the
// state instead (Rebuild) when a write of this Ledger failed with
// eventstore.ErrFenced since the last rebuild (the state folded events
// the log may not hold), or when the store holds another record at the
// state's last position. Otherwise, while this Ledger's own records are in
// flight (its last record is beyond the store's durable head), it changes
// nothing. Writes wait for it; reads and Authenticate go on. It fails
// with ErrInconsistent if a record cannot be applied.
func (l *Ledger) CatchUp(ctx context.Context) (eventstore.Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale {
		return l.last, l.rebuild(ctx)
	}
	if l.err != nil {
		return l.last, l.err
	}
	head, err := l.cfg.Store.Head(l.cfg.Chain)
	if err != nil {
		return l.last, err
	}
	if l.last.Seq >= head.Seq {
		return l.last, nil
	}
	if l.last.Seq > 0 {
		r, err := l.cfg.Store.Get(ctx, l.cfg.Chain, l.last.Seq)
		if err != nil && !errors.Is(err, eventstore.ErrNotFound) {
			return l.last, fmt.Errorf("writeside: catch up: %w", err)
		}
		if err != nil || r.Hash != l.last.Hash {
			return l.last, l.rebuild(ctx)
		}
	}
	err = l.cfg.Store.Records(ctx, l.cfg.Chain, l.last.Seq+1, head.Seq, func(r eventstore.Record) error {
		ev, err := domain.Decode(r.Type, r.Payload)
		if err != nil {
			return fmt.Errorf("%w: seq %d: %w", ErrInconsistent, r.Seq, err)
		}
		if err := l.state.Apply(replay.Meta(r), ev); err != nil {
			return fmt.Errorf("%w: seq %d (%s): %w", ErrInconsistent, r.Seq, r.Type, err)
		}
		l.refreshAuth()
		l.keyAdded(ev)
		l.applied(r)
		return nil
	})
	if errors.Is(err, ErrInconsistent) {
		// The state is part-way through a record: refuse writes until a
		// Rebuild.
		l.err = err
		l.cfg.Logger.Error("live state rejected a record sequenced elsewhere; refusing writes", "chain", l.cfg.Chain, "err", err)
	}
	if err != nil {
		return l.last, fmt.Errorf("writeside: catch up: %w", err)
	}
	return l.last, nil
}

// Rebuild replaces the live state with one built from the store (the
// newest matching snapshot and the durable records after it), as Open
// does, and clears ErrInconsistent. Records this Ledger has in flight are
// not in the rebuilt state until CatchUp folds them in once durable, so
// call it only while the store refuses this Ledger's appends (a node that
// does not sequence the chain, or one about to start). Writes wait for it.
func (l *Ledger) Rebuild(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rebuild(ctx)
}

// fencedWrite records that a write this Ledger folded in failed with
// eventstore.ErrFenced: the next CatchUp rebuilds the state.
func (l *Ledger) fencedWrite(err error) {
	if !errors.Is(err, eventstore.ErrFenced) {
		return
	}
	l.mu.Lock()
	l.stale = true
	l.mu.Unlock()
}

// rebuild is Rebuild with l.mu held.
func (l *Ledger) rebuild(ctx context.Context) error {
	state, last := domain.NewState(), eventstore.Head{}
	if s := l.snap; s != nil {
		restored, head, ok, err := s.snaps.Newest(ctx, time.Time{}, l.cfg.Logger)
		if err != nil {
			return fmt.Errorf("writeside: rebuild: %w", err)
		}
		if ok {
			state, last = restored, head
		}
	}
	last, err := replay.Fold(ctx, l.cfg.Store, l.cfg.Chain, state, last)
	if err != nil {
		return fmt.Errorf("writeside: rebuild: %w", err)
	}
	l.state, l.last, l.lastTime, l.err, l.stale = state, last, time.Time{}, nil, false
	if last.Seq > 0 {
		r, err := l.cfg.Store.Get(ctx, l.cfg.Chain, last.Seq)
		if err != nil {
			return fmt.Errorf("writeside: rebuild: read the last record: %w", err)
		}
		l.lastTime = r.Time
	}
	// Cached keys may come from events the log does not hold: drop them,
	// Authenticate fills the cache again from the rebuilt state.
	l.auth.index.Store(nil)
	if l.cfg.KeyAdded != nil {
		for _, h := range state.Keys.Hashes() {
			l.cfg.KeyAdded(h)
		}
	}
	if l.snap != nil {
		l.snap.next = nextDue(last.Seq, l.snap.every, snapshotGap(l.snap.every, state))
	}
	l.cfg.Logger.Info("ledger state rebuilt after a fence", "chain", l.cfg.Chain, "seq", last.Seq)
	return nil
}
