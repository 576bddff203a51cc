// Package replay rebuilds domain state from the log: it folds records with
// the domain's one Apply, and reads and writes the state snapshots that let
// a fold start late. The write side (projections/writeside: start-up) and the
// read side (projections/readside: point in time) both use it; it imports
// neither.
//
// # Snapshots
//
// A snapshot is a domain.State encoded with MarshalSnapshot, stored in the
// log store's derived data (namespace "snap-<chain>", see Namespace): verify
// never reads it, and losing it only costs a longer fold. It names the last
// record folded into it by seq and hash. Snapshots.Newest returns the newest
// one whose record matches the chain; one that does not match or does not
// decode is skipped with a warning and the next older one is tried. The
// stored value is an envelope:
//
//	version    1 byte  (envelopeVersion)
//	seq        8 bytes big-endian: the last record folded into the state
//	hash      32 bytes: that record's hash (eventstore.Record.Hash)
//	format     2 bytes big-endian: domain.SnapshotVersion
//	state      domain.State.MarshalSnapshot
//	checksum   4 bytes big-endian: CRC-32C of everything before it
//
// Snapshots is safe for concurrent use as far as its Aux is: one Save at a
// time, any number of Newest.
package replay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/eventstore"
)

// Meta is where and when record r sits in the log, as Apply takes it.
func Meta(r eventstore.Record) domain.Meta {
	return domain.Meta{Seq: r.Seq, ID: r.ID, Time: r.Time, Actor: r.Actor}
}

// Apply decodes r and folds it into state. Its errors name the seq.
func Apply(state *domain.State, r eventstore.Record) error {
	ev, err := domain.Decode(r.Type, r.Payload)
	if err != nil {
		return fmt.Errorf("replay seq %d: %w", r.Seq, err)
	}
	if err := state.Apply(Meta(r), ev); err != nil {
		return fmt.Errorf("replay seq %d (%s): %w", r.Seq, r.Type, err)
	}
	state.Keys.TakeChanged() // a replayed state has no copies to refresh
	return nil
}

// Fold applies every durable record of chain after the one named by after
// to state and returns the last one applied (after itself when there is
// none).
func Fold(ctx context.Context, log eventstore.Log, chain string, state *domain.State, after eventstore.Head) (eventstore.Head, error) {
	last := after
	err := log.Records(ctx, chain, after.Seq+1, 0, func(r eventstore.Record) error {
		if err := Apply(state, r); err != nil {
			return err
		}
		last = eventstore.Head{Seq: r.Seq, Hash: r.Hash}
		return nil
	})
	if err != nil {
		return eventstore.Head{}, fmt.Errorf("replay: fold %s: %w", chain, err)
	}
	return last, nil
}

// Kept is how many snapshots Save keeps; older ones are deleted when a new
// one is saved.
const Kept = 3

// envelopeVersion is the version of the stored value around a snapshot.
const envelopeVersion = 1

const envelopeOverhead = 1 + 8 + eventstore.HashSize + 2 + 4

// Keys in the namespace: 's' seq holds a snapshot and 'i' seq (empty) lists
// it, so that listing snapshots does not read them.
const (
	valueKey byte = 's'
	indexKey byte = 'i'
)

func snapKey(kind byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kind}, seq)
}

// Namespace is the Aux namespace of chain's snapshots: "snap-<chain>", or
// for a chain name too long for that, "snap-" and a hash of the name.
func Namespace(chain string) string {
	if ns := "snap-" + chain; eventstore.ValidateChain(ns) == nil {
		return ns
	}
	sum := sha256.Sum256([]byte(chain))
	return "snap-" + hex.EncodeToString(sum[:16])
}

// Snapshots reads and writes the snapshots of one chain.
type Snapshots struct {
	log   eventstore.Log
	chain string
	aux   *eventstore.Aux
}

// OpenSnapshots returns the snapshots of chain, kept in aux (the
// derived-data namespace Namespace(chain)) and checked against log.
func OpenSnapshots(log eventstore.Log, chain string, aux *eventstore.Aux) *Snapshots {
	return &Snapshots{log: log, chain: chain, aux: aux}
}

// errAfterInstant marks a snapshot that covers records after the instant
// asked for: not broken, just too new.
var errAfterInstant = errors.New("snapshot covers records after the instant")

// Newest returns the state of the newest snapshot that decodes, matches
// the chain and covers no record after at (zero at: no limit), and the
// record it ends with. Snapshots that do not decode or match are logged and
// skipped; only a cancelled ctx is an error. ok is false when none fits.
func (s *Snapshots) Newest(ctx context.Context, at time.Time, logger *slog.Logger) (state *domain.State, head eventstore.Head, ok bool, err error) {
	seqs, err := s.list(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, eventstore.Head{}, false, ctx.Err()
		}
		logger.Warn("cannot list snapshots; replaying the whole chain", "chain", s.chain, "err", err)
		return nil, eventstore.Head{}, false, nil
	}
	for i := len(seqs) - 1; i >= 0; i-- {
		state, head, err := s.load(ctx, seqs[i], at, logger)
		if err == nil {
			return state, head, true, nil
		}
		if ctx.Err() != nil {
			return nil, eventstore.Head{}, false, ctx.Err()
		}
		if !errors.Is(err, errAfterInstant) {
			logger.Warn("ignoring snapshot", "chain", s.chain, "seq", seqs[i], "err", err)
		}
	}
	return nil, eventstore.Head{}, false, nil
}

// load reads, checks and restores the snapshot at seq. With a non-zero at,
// a snapshot whose last record is after at is refused with
// errAfterInstant.
func (s *Snapshots) load(ctx context.Context, seq uint64, at time.Time, logger *slog.Logger) (*domain.State, eventstore.Head, error) {
	began := time.Now()
	rec, err := s.log.Get(ctx, s.chain, seq)
	if err != nil {
		return nil, eventstore.Head{}, fmt.Errorf("chain record: %w", err)
	}
	if !at.IsZero() && rec.Time.After(at) {
		return nil, eventstore.Head{}, errAfterInstant
	}
	value, ok, err := s.aux.Get(snapKey(valueKey, seq))
	if err != nil {
		return nil, eventstore.Head{}, err
	}
	if !ok {
		return nil, eventstore.Head{}, errors.New("listed but missing")
	}
	head, body, err := OpenEnvelope(value)
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
	state.Keys.TakeChanged()
	logger.Debug("snapshot restored", "chain", s.chain, "seq", seq, "bytes", len(value), "took", time.Since(began))
	return state, head, nil
}

// Save encodes state, stores it as the snapshot at head and prunes: it
// keeps the Kept newest at or below head.Seq and deletes any above it (left
// by a history that the chain no longer has). It returns the stored size.
// state must not change while Save runs (pass a domain.State.FrozenCopy).
func (s *Snapshots) Save(head eventstore.Head, state *domain.State) (int, error) {
	body, err := state.MarshalSnapshot()
	if err != nil {
		return 0, err
	}
	value := SealEnvelope(head, body)
	seqs, err := s.list(context.Background())
	if err != nil {
		return 0, err
	}
	batch, err := s.aux.NewBatch()
	if err != nil {
		return 0, err
	}
	defer func() { _ = batch.Close() }()
	if err := batch.Set(snapKey(valueKey, head.Seq), value); err != nil {
		return 0, err
	}
	if err := batch.Set(snapKey(indexKey, head.Seq), nil); err != nil {
		return 0, err
	}
	var older []uint64
	for _, seq := range seqs {
		if seq < head.Seq {
			older = append(older, seq)
		}
	}
	var ranges [][2][]byte
	if keepOlder := Kept - 1; len(older) > keepOlder {
		cut := head.Seq
		if keepOlder > 0 {
			cut = older[len(older)-keepOlder]
		}
		for _, kind := range []byte{valueKey, indexKey} {
			ranges = append(ranges, [2][]byte{{kind}, snapKey(kind, cut)})
		}
	}
	if len(seqs) > 0 && seqs[len(seqs)-1] > head.Seq {
		for _, kind := range []byte{valueKey, indexKey} {
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

// list returns the seqs of the stored snapshots, oldest first.
func (s *Snapshots) list(ctx context.Context) ([]uint64, error) {
	var seqs []uint64
	err := s.aux.Scan(ctx, []byte{indexKey}, []byte{indexKey + 1}, func(key, _ []byte) error {
		if len(key) != 9 {
			return fmt.Errorf("snapshot index key %x", key)
		}
		seqs = append(seqs, binary.BigEndian.Uint64(key[1:]))
		return nil
	})
	return seqs, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SealEnvelope returns the stored value of a snapshot of state (encoded)
// at head. Exported for tests that forge stored snapshots.
func SealEnvelope(head eventstore.Head, state []byte) []byte {
	b := make([]byte, 0, envelopeOverhead+len(state))
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint64(b, head.Seq)
	b = append(b, head.Hash[:]...)
	b = binary.BigEndian.AppendUint16(b, domain.SnapshotVersion)
	b = append(b, state...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// OpenEnvelope checks a stored value and returns what it holds.
func OpenEnvelope(b []byte) (eventstore.Head, []byte, error) {
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
