package writeside

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/replay"
)

// Snapshots
//
// Every SnapshotEvery events, or every as many events as the state has
// entries when that is more (see snapshotGap), the Ledger saves its state,
// encoded with domain.State.MarshalSnapshot, in the store's Aux namespace
// "snap-<chain>" (derived data: verify never reads it, and losing it only
// costs a longer start), as projections/replay stores it: in chunks of 1 MiB
// written in batches of 8 MiB, the last batch listing it, so that a save
// holds about one copy of the encoded state and a crash during one leaves
// nothing that Open reads. Open restores the newest snapshot whose seq and
// hash match the chain's record at that seq and replays only the records
// after it; a snapshot that does not match or does not decode is skipped
// with a warning and the next older one is tried, then genesis.
//
// Taking a snapshot does not hold up writers. Write already holds the write
// lock when its events cross the next multiple of SnapshotEvery; there the
// Ledger takes a domain.State.FrozenCopy, which costs O(shards), not
// O(state): keys, agents and sessions are copy-on-write maps that the copy
// shares with the live state, which copies a shard on its first write after
// the copy and a key entry or session record before its first change
// (about 20 µs under the lock at 1M keys, and at most 0.2 ms for the first
// key write to a shard afterwards; docs/benchmarks.md). Encoding,
// checksumming and writing run on a goroutine without any lock, one at a
// time; if the previous one is still running when the next is due, the next
// Write after it finishes takes it. The snapshot names the last record folded into it, which Write has
// sequenced but perhaps not yet made durable: if that record is lost in a
// crash, the snapshot no longer matches the chain and Open skips it.
//
// A separate goroutine folding its own copy of the state from the log would
// avoid even that copy, but it decodes every event a second time, which
// costs far more CPU over a snapshot interval than the copy-on-write, and
// it doubles the state's memory.

// DefaultSnapshotEvery is the default Config.SnapshotEvery.
const DefaultSnapshotEvery = 100_000

// NoSnapshots, as Config.SnapshotEvery, disables snapshots.
const NoSnapshots = -1

// snapshotter schedules the snapshots of one Ledger.
type snapshotter struct {
	snaps *replay.Snapshots
	every uint64
	save  bool // false on a read-only store: snapshots are only read
	// next and closed are guarded by the Ledger's mu.
	next   uint64 // a snapshot is due once the Ledger has folded this seq
	closed bool
	busy   atomic.Bool // a save is running
	wg     sync.WaitGroup
	// stopped is set once saving stopped because derived data failed.
	stopped atomic.Bool
}

// snapshotGap returns how many events after a snapshot of state the next
// one is due: every, or the number of entries state holds (domain.State.
// Entries) when that is more. A snapshot encodes and writes every entry, and
// what it saves is the replay of the events since the one before; with this
// gap the snapshot work per event stays at most about one entry however
// large the state (at 1M keys, a 164 MB snapshot every 100k events took a
// core for 3.5 s of every 14 s at full load), while a start replays at most
// max(every, entries) events after the newest snapshot.
func snapshotGap(every uint64, state *domain.State) uint64 {
	return max(every, uint64(state.Entries()))
}

// nextDue returns when the first snapshot of a Ledger whose state (folded
// up to seq) was restored or rebuilt is due: the first multiple of every
// after seq, so that a store whose state is small keeps taking its
// snapshots at the same seqs across restarts, or gap events after seq when
// gap is larger.
func nextDue(seq, every, gap uint64) uint64 {
	if gap > every {
		return seq + gap
	}
	return (seq/every + 1) * every
}

// start restores the newest matching snapshot (if any), folds the records
// after it and, when a snapshot is due, starts saving one.
func (l *Ledger) start(ctx context.Context) error {
	began := time.Now()
	state, last := domain.NewState(), eventstore.Head{}
	if l.cfg.SnapshotEvery > 0 {
		aux, err := l.cfg.Store.Aux(replay.Namespace(l.cfg.Chain))
		if err != nil {
			return err
		}
		l.snap = &snapshotter{snaps: replay.OpenSnapshots(l.cfg.Store, l.cfg.Chain, aux), every: uint64(l.cfg.SnapshotEvery), save: !l.cfg.Store.ReadOnly()}
		if s, head, ok, err := l.snap.snaps.Newest(ctx, time.Time{}, l.cfg.Logger); err != nil {
			return err
		} else if ok {
			state, last = s, head
		}
		l.snap.next = nextDue(last.Seq, l.snap.every, snapshotGap(l.snap.every, state))
	}
	from := last.Seq
	last, err := replay.Fold(ctx, l.cfg.Store, l.cfg.Chain, state, last)
	if err != nil {
		return fmt.Errorf("writeside: %w", err)
	}
	var lastTime time.Time
	if last.Seq > 0 {
		r, err := l.cfg.Store.Get(ctx, l.cfg.Chain, last.Seq)
		if err != nil {
			return fmt.Errorf("writeside: read the last record: %w", err)
		}
		lastTime = r.Time
	}
	l.cfg.Logger.Info("ledger state rebuilt", "chain", l.cfg.Chain, "seq", last.Seq, "from_snapshot", from,
		"replayed", last.Seq-from, "took", time.Since(began))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.last, l.lastTime = state, last, lastTime
	l.maybeSnapshot()
	return nil
}

// applied records that the Ledger folded everything up to r and saves a
// snapshot if one is due. The caller holds l.mu.
func (l *Ledger) applied(r eventstore.Record) {
	l.last, l.lastTime = eventstore.Head{Seq: r.Seq, Hash: r.Hash}, r.Time
	l.maybeSnapshot()
}

// maybeSnapshot starts saving a snapshot of the live state if one is due
// and none is being saved. The caller holds l.mu (for writing, or while no
// one else can reach the Ledger).
func (l *Ledger) maybeSnapshot() {
	s := l.snap
	if s == nil || !s.save || s.closed || l.err != nil || l.last.Seq < s.next || s.stopped.Load() {
		return
	}
	if err := l.cfg.Store.DerivedFailed(); err != nil {
		// Derived data is gone until a restart: stop freezing copies
		// that cannot be saved, and say so once.
		s.stopped.Store(true)
		l.cfg.Logger.Warn("snapshots stopped: derived data failed; restarts replay the log from the last saved snapshot",
			"chain", l.cfg.Chain, "seq", l.last.Seq, "err", err)
		return
	}
	if !s.busy.CompareAndSwap(false, true) {
		return
	}
	began := time.Now()
	head, frozen := l.last, l.state.FrozenCopy()
	froze := time.Since(began)
	s.next = nextDue(head.Seq, s.every, snapshotGap(s.every, frozen))
	logger, chain := l.cfg.Logger, l.cfg.Chain
	s.wg.Go(func() {
		defer s.busy.Store(false)
		n, err := s.snaps.Save(head, frozen)
		switch {
		case errors.Is(err, eventstore.ErrClosed):
			logger.Debug("snapshot not saved: store closed", "chain", chain, "seq", head.Seq)
		case err != nil:
			logger.Warn("snapshot not saved", "chain", chain, "seq", head.Seq, "err", err)
		default:
			logger.Info("snapshot saved", "chain", chain, "seq", head.Seq, "bytes", n,
				"froze", froze, "took", time.Since(began))
		}
	})
}

// Close stops saving snapshots and waits for one being saved. Call it before
// closing the store. Writes keep working; Close is safe to call more than
// once.
func (l *Ledger) Close() error {
	l.mu.Lock()
	s := l.snap
	if s != nil {
		s.closed = true
	}
	l.mu.Unlock()
	if s != nil {
		s.wg.Wait()
	}
	return nil
}
