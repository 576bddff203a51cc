package projections

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/eventstore"
)

// Snapshots
//
// Every SnapshotEvery events the Ledger saves its state, encoded with
// domain.State.MarshalSnapshot, in the store's Aux namespace "snap-<chain>"
// (derived data: verify never reads it, and losing it only costs a longer
// start). Open restores the newest snapshot whose seq and hash match the
// chain's record at that seq and replays only the records after it; a
// snapshot that does not match or does not decode is skipped with a warning
// and the next older one is tried, then genesis.
//
// Taking a snapshot does not hold up writers. Write already holds the write
// lock when its events cross the next multiple of SnapshotEvery; there the
// Ledger takes a domain.State.FrozenCopy, which copies the key, agent and
// session records but shares the sessions' decision trails (they are only
// ever appended to), so it costs a fraction of a deep Clone: O(keys +
// agents + sessions), not O(events). Encoding, checksumming and writing run
// on a goroutine without any lock, one at a time; if the previous one is
// still running when the next is due, the next Write after it finishes takes
// it. The snapshot names the last record folded into it, which Write has
// sequenced but perhaps not yet made durable: if that record is lost in a
// crash, the snapshot no longer matches the chain and Open skips it.
//
// A separate goroutine folding its own copy of the state from the log would
// avoid even that copy, but it decodes every event a second time, which
// costs far more CPU over a snapshot interval than one frozen copy, and it
// doubles the state's memory.

// DefaultSnapshotEvery is the default Config.SnapshotEvery.
const DefaultSnapshotEvery = 100_000

// NoSnapshots, as Config.SnapshotEvery, disables snapshots.
const NoSnapshots = -1

// snapshotsKept is how many snapshots are kept; older ones are deleted when
// a new one is saved.
const snapshotsKept = 3

// envelopeVersion is the version of the stored value around a state
// snapshot:
//
//	version    1 byte  (envelopeVersion)
//	seq        8 bytes big-endian: the last record folded into the state
//	hash      32 bytes: that record's hash (eventstore.Record.Hash)
//	format     2 bytes big-endian: domain.SnapshotVersion
//	state      domain.State.MarshalSnapshot
//	checksum   4 bytes big-endian: CRC-32C of everything before it
const envelopeVersion = 1

const envelopeOverhead = 1 + 8 + eventstore.HashSize + 2 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Keys in the namespace: 's' seq holds a snapshot and 'i' seq (empty) lists
// it, so that listing snapshots does not read them.
const (
	snapValueKey byte = 's'
	snapIndexKey byte = 'i'
)

func snapKey(kind byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kind}, seq)
}

// snapshotNamespace is "snap-<chain>", or for a chain name too long for
// that, "snap-" and a hash of the name.
func snapshotNamespace(chain string) string {
	if ns := "snap-" + chain; eventstore.ValidateChain(ns) == nil {
		return ns
	}
	sum := sha256.Sum256([]byte(chain))
	return "snap-" + hex.EncodeToString(sum[:16])
}

// snapshotter saves and finds the snapshots of one Ledger.
type snapshotter struct {
	aux   *eventstore.Aux
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

// nextDue returns the first multiple of every after seq.
func nextDue(seq, every uint64) uint64 { return (seq/every + 1) * every }

// start restores the newest matching snapshot (if any), folds the records
// after it and, when a snapshot is due, starts saving one.
func (l *Ledger) start(ctx context.Context) error {
	began := time.Now()
	state, last := domain.NewState(), eventstore.Head{}
	if l.cfg.SnapshotEvery > 0 {
		aux, err := l.cfg.Store.Aux(snapshotNamespace(l.cfg.Chain))
		if err != nil {
			return err
		}
		l.snap = &snapshotter{aux: aux, every: uint64(l.cfg.SnapshotEvery), save: !l.cfg.Store.ReadOnly()}
		if s, head, ok, err := l.newestSnapshot(ctx); err != nil {
			return err
		} else if ok {
			state, last = s, head
		}
		l.snap.next = nextDue(last.Seq, l.snap.every)
	}
	from := last.Seq
	last, err := fold(ctx, l.cfg.Store, l.cfg.Chain, state, last, time.Time{})
	if err != nil {
		return err
	}
	var lastTime time.Time
	if last.Seq > 0 {
		r, err := l.cfg.Store.Get(ctx, l.cfg.Chain, last.Seq)
		if err != nil {
			return fmt.Errorf("projections: read the last record: %w", err)
		}
		lastTime = r.Time
	}
	l.cfg.Logger.Info("ledger state rebuilt", "chain", l.cfg.Chain, "seq", last.Seq, "from_snapshot", from,
		"replayed", last.Seq-from, "took", time.Since(began))
	l.mu.Lock()
	defer l.mu.Unlock()
	state.Keys.TakeChanged() // nothing is cached yet: Authenticate starts empty
	l.state, l.last, l.lastTime = state, last, lastTime
	l.maybeSnapshot()
	return nil
}

// fold applies the chain's records after the one named by after to state
// and returns the last one applied (after itself when there is none). With
// a non-zero at, it stops after the last record whose time is at or before
// at.
func fold(ctx context.Context, store *eventstore.Store, chain string, state *domain.State, after eventstore.Head, at time.Time) (eventstore.Head, error) {
	last := after
	err := store.Records(ctx, chain, after.Seq+1, 0, func(r eventstore.Record) error {
		if !at.IsZero() && r.Time.After(at) {
			return errStop
		}
		ev, err := domain.Decode(r.Type, r.Payload)
		if err != nil {
			return fmt.Errorf("projections: replay seq %d: %w", r.Seq, err)
		}
		if err := state.Apply(metaOf(r), ev); err != nil {
			return fmt.Errorf("projections: replay seq %d (%s): %w", r.Seq, r.Type, err)
		}
		state.Keys.TakeChanged() // a replayed state has no cache to refresh
		last = eventstore.Head{Seq: r.Seq, Hash: r.Hash}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return eventstore.Head{}, err
	}
	return last, nil
}

// newestSnapshot returns the state of the newest snapshot that decodes and
// matches the chain, and the record it ends with. Snapshots that do not are
// logged and skipped; only a cancelled ctx is an error.
func (l *Ledger) newestSnapshot(ctx context.Context) (*domain.State, eventstore.Head, bool, error) {
	return newestSnapshotAt(ctx, l.cfg.Store, l.cfg.Chain, l.snap.aux, time.Time{}, l.cfg.Logger)
}

// newestSnapshotAt returns the newest snapshot in aux that decodes, matches
// the chain and covers no record after at (zero at: no limit). Snapshots
// that do not decode or match are logged and skipped; only a cancelled ctx
// is an error.
func newestSnapshotAt(ctx context.Context, store *eventstore.Store, chain string, aux *eventstore.Aux, at time.Time, logger *slog.Logger) (*domain.State, eventstore.Head, bool, error) {
	seqs, err := (&snapshotter{aux: aux}).list(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, eventstore.Head{}, false, ctx.Err()
		}
		logger.Warn("cannot list snapshots; replaying the whole chain", "chain", chain, "err", err)
		return nil, eventstore.Head{}, false, nil
	}
	for i := len(seqs) - 1; i >= 0; i-- {
		state, head, err := loadSnapshot(ctx, store, chain, aux, seqs[i], at, logger)
		if err == nil {
			return state, head, true, nil
		}
		if ctx.Err() != nil {
			return nil, eventstore.Head{}, false, ctx.Err()
		}
		if !errors.Is(err, errAfterInstant) {
			logger.Warn("ignoring snapshot", "chain", chain, "seq", seqs[i], "err", err)
		}
	}
	return nil, eventstore.Head{}, false, nil
}

// errAfterInstant marks a snapshot that covers records after the instant
// asked for: not broken, just too new.
var errAfterInstant = errors.New("snapshot covers records after the instant")

// loadSnapshot reads, checks and restores the snapshot at seq. With a
// non-zero at, a snapshot whose last record is after at is refused with
// errAfterInstant.
func loadSnapshot(ctx context.Context, store *eventstore.Store, chain string, aux *eventstore.Aux, seq uint64, at time.Time, logger *slog.Logger) (*domain.State, eventstore.Head, error) {
	began := time.Now()
	rec, err := store.Get(ctx, chain, seq)
	if err != nil {
		return nil, eventstore.Head{}, fmt.Errorf("chain record: %w", err)
	}
	if !at.IsZero() && rec.Time.After(at) {
		return nil, eventstore.Head{}, errAfterInstant
	}
	value, ok, err := aux.Get(snapKey(snapValueKey, seq))
	if err != nil {
		return nil, eventstore.Head{}, err
	}
	if !ok {
		return nil, eventstore.Head{}, errors.New("listed but missing")
	}
	head, body, err := openEnvelope(value)
	if err != nil {
		return nil, eventstore.Head{}, err
	}
	if head.Seq != seq {
		return nil, eventstore.Head{}, fmt.Errorf("stored under seq %d but says seq %d", seq, head.Seq)
	}
	if rec.Hash != head.Hash {
		return nil, eventstore.Head{}, fmt.Errorf("hash %x does not match the chain's %x", head.Hash, rec.Hash)
	}
	state := domain.NewState()
	if err := state.UnmarshalSnapshot(body); err != nil {
		return nil, eventstore.Head{}, err
	}
	logger.Debug("snapshot restored", "chain", chain, "seq", seq, "bytes", len(value), "took", time.Since(began))
	return state, head, nil
}

// sealEnvelope returns the stored value of a snapshot of state at head.
func sealEnvelope(head eventstore.Head, state []byte) []byte {
	b := make([]byte, 0, envelopeOverhead+len(state))
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint64(b, head.Seq)
	b = append(b, head.Hash[:]...)
	b = binary.BigEndian.AppendUint16(b, domain.SnapshotVersion)
	b = append(b, state...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// openEnvelope checks a stored value and returns what it holds.
func openEnvelope(b []byte) (eventstore.Head, []byte, error) {
	if len(b) < envelopeOverhead {
		return eventstore.Head{}, nil, fmt.Errorf("value of %d bytes is too short", len(b))
	}
	if b[0] != envelopeVersion {
		return eventstore.Head{}, nil, fmt.Errorf("envelope version %d, this build reads %d", b[0], envelopeVersion)
	}
	sum := binary.BigEndian.Uint32(b[len(b)-4:])
	b = b[:len(b)-4]
	if crc32.Checksum(b, castagnoli) != sum {
		return eventstore.Head{}, nil, errors.New("checksum mismatch")
	}
	var head eventstore.Head
	head.Seq = binary.BigEndian.Uint64(b[1:9])
	copy(head.Hash[:], b[9:9+eventstore.HashSize])
	b = b[9+eventstore.HashSize:]
	if v := binary.BigEndian.Uint16(b); v != domain.SnapshotVersion {
		return eventstore.Head{}, nil, fmt.Errorf("%w: state format %d, this build reads %d", domain.ErrSnapshotVersion, v, domain.SnapshotVersion)
	}
	return head, b[2:], nil
}

// list returns the seqs of the stored snapshots, oldest first.
func (s *snapshotter) list(ctx context.Context) ([]uint64, error) {
	var seqs []uint64
	err := s.aux.Scan(ctx, []byte{snapIndexKey}, []byte{snapIndexKey + 1}, func(key, _ []byte) error {
		if len(key) != 9 {
			return fmt.Errorf("snapshot index key %x", key)
		}
		seqs = append(seqs, binary.BigEndian.Uint64(key[1:]))
		return nil
	})
	return seqs, err
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
	s.next = nextDue(head.Seq, s.every)
	logger, chain := l.cfg.Logger, l.cfg.Chain
	s.wg.Go(func() {
		defer s.busy.Store(false)
		n, err := s.write(head, frozen)
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

// write encodes state, stores it as the snapshot at head and prunes: it
// keeps the snapshotsKept newest at or below head.Seq and deletes any above
// it (left by a history that the chain no longer has).
func (s *snapshotter) write(head eventstore.Head, state *domain.State) (int, error) {
	body, err := state.MarshalSnapshot()
	if err != nil {
		return 0, err
	}
	value := sealEnvelope(head, body)
	seqs, err := s.list(context.Background())
	if err != nil {
		return 0, err
	}
	batch, err := s.aux.NewBatch()
	if err != nil {
		return 0, err
	}
	defer func() { _ = batch.Close() }()
	if err := batch.Set(snapKey(snapValueKey, head.Seq), value); err != nil {
		return 0, err
	}
	if err := batch.Set(snapKey(snapIndexKey, head.Seq), nil); err != nil {
		return 0, err
	}
	var older []uint64
	for _, seq := range seqs {
		if seq < head.Seq {
			older = append(older, seq)
		}
	}
	var ranges [][2][]byte
	if keepOlder := snapshotsKept - 1; len(older) > keepOlder {
		cut := head.Seq
		if keepOlder > 0 {
			cut = older[len(older)-keepOlder]
		}
		for _, kind := range []byte{snapValueKey, snapIndexKey} {
			ranges = append(ranges, [2][]byte{{kind}, snapKey(kind, cut)})
		}
	}
	if len(seqs) > 0 && seqs[len(seqs)-1] > head.Seq {
		for _, kind := range []byte{snapValueKey, snapIndexKey} {
			ranges = append(ranges, [2][]byte{snapKey(kind, head.Seq+1), {kind + 1}})
		}
	}
	for _, r := range ranges {
		if err := batch.DeleteRange(r[0], r[1]); err != nil {
			return 0, err
		}
	}
	if err := batch.Commit(); err != nil {
		return 0, err
	}
	return len(value), nil
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
