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
// decode (or whose envelope is of another version, as the single-value
// snapshots of envelope version 1 are) is skipped with a warning and the
// next older one is tried. A snapshot is stored as an envelope:
//
//	version    1 byte  (envelopeVersion)
//	seq        8 bytes big-endian: the last record folded into the state
//	hash      32 bytes: that record's hash (eventstore.Record.Hash)
//	format     2 bytes big-endian: domain.SnapshotVersion
//	chunks     4 bytes big-endian: how many chunks the envelope is stored in
//	length     8 bytes big-endian: the length of state
//	state      domain.State.MarshalSnapshot
//	checksum   4 bytes big-endian: CRC-32C of everything before it
//
// cut into chunks of ChunkSize bytes (the last one shorter), each its own
// value under 'c' seq n (n: 4 bytes big-endian, from 0), and listed by an
// empty value under 'i' seq. Save encodes the state in its parts
// (domain.State.MarshalSnapshotParts), never as one buffer, checksums them
// as it goes and writes the chunks in batches of at most chunksPerBatch
// chunks; the index key and the pruning go in the last batch, so a save
// that a crash interrupts leaves chunks that nothing lists: they are never
// read, and the first save that prunes past their seq deletes them (the
// pruning deletes every chunk outside the snapshots it keeps). So a save
// holds the encoded state once plus a chunk and a batch, not the several
// whole copies that a single value costs (concatenation, envelope, batch,
// and Pebble's flush of one huge value). Loading reads the chunks in order
// into one buffer and rejects a missing, extra or wrongly sized chunk.
//
// Snapshots is safe for concurrent use as far as its Aux is: one Save at a
// time, any number of Newest.
package replay

import (
	"bytes"
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

// envelopeVersion is the version of the stored envelope around a snapshot:
// 1 was one value per snapshot, 2 is chunked.
const envelopeVersion = 2

// headerSize is the envelope before the state, envelopeOverhead all of it
// but the state.
const (
	headerSize       = 1 + 8 + eventstore.HashSize + 2 + 4 + 8
	envelopeOverhead = headerSize + 4
)

// ChunkSize is the size of each stored chunk of an envelope but the last.
const ChunkSize = 1 << 20

// chunksPerBatch is how many chunks Save writes per batch (8 MiB).
const chunksPerBatch = 8

// Keys in the namespace: 'c' seq n holds chunk n of the snapshot at seq and
// 'i' seq (empty) lists it, so that listing snapshots does not read them.
// 's' seq held a whole snapshot (envelope version 1); Save's pruning deletes
// those as it deletes every key outside the snapshots it keeps.
const (
	oldValueKey byte = 's'
	chunkKey    byte = 'c'
	indexKey    byte = 'i'
)

func snapKey(kind byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kind}, seq)
}

func chunkKeyOf(seq uint64, n uint32) []byte {
	return binary.BigEndian.AppendUint32(snapKey(chunkKey, seq), n)
}

// afterSeq is the first key of kind after every key of seq ('c' seq n
// included).
func afterSeq(kind byte, seq uint64) []byte {
	if seq == ^uint64(0) {
		return []byte{kind + 1}
	}
	return snapKey(kind, seq+1)
}

// chunkCount is how many chunks an envelope of total bytes takes.
func chunkCount(total int) int { return (total + ChunkSize - 1) / ChunkSize }

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
	// committed, when set (by tests), is called after each batch of a save
	// but the last; an error stops the save there, as a crash would.
	committed func(batch int) error
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
	value, err := s.readChunks(ctx, seq)
	if err != nil {
		return nil, eventstore.Head{}, err
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

// readChunks returns the envelope stored at seq, its chunks joined in
// order. It checks that the chunks are exactly those the envelope's header
// (in chunk 0) counts, each of its size, but not the checksum
// (OpenEnvelope does).
func (s *Snapshots) readChunks(ctx context.Context, seq uint64) ([]byte, error) {
	first, ok, err := s.aux.Get(chunkKeyOf(seq, 0))
	if err != nil {
		return nil, err
	}
	if !ok {
		old := false
		if err := s.aux.Scan(ctx, snapKey(oldValueKey, seq), afterSeq(oldValueKey, seq), func(_, v []byte) error {
			old = len(v) > 0
			return nil
		}); err != nil {
			return nil, err
		}
		if old {
			return nil, fmt.Errorf("stored as one value (envelope version 1), this build reads chunked envelopes (version %d)", envelopeVersion)
		}
		return nil, errors.New("listed but missing")
	}
	n, total, err := envelopeSize(first)
	if err != nil {
		return nil, fmt.Errorf("chunk 0: %w", err)
	}
	if n > 1 {
		// See that the last chunk is there before allocating for all.
		if _, ok, err := s.aux.Get(chunkKeyOf(seq, uint32(n-1))); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("missing chunk %d of %d", n-1, n)
		}
	}
	buf := make([]byte, 0, total)
	next := 0
	err = s.aux.Scan(ctx, chunkKeyOf(seq, 0), afterSeq(chunkKey, seq), func(key, v []byte) error {
		if len(key) != 1+8+4 {
			return fmt.Errorf("snapshot chunk key %x", key)
		}
		switch i := int(binary.BigEndian.Uint32(key[9:])); {
		case i >= n:
			return fmt.Errorf("extra chunk %d: the envelope has %d", i, n)
		case i != next:
			return fmt.Errorf("missing chunk %d of %d", next, n)
		}
		if want := min(ChunkSize, total-len(buf)); len(v) != want {
			return fmt.Errorf("chunk %d of %d has %d bytes, want %d", next, n, len(v), want)
		}
		buf = append(buf, v...)
		next++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next != n {
		return nil, fmt.Errorf("missing chunk %d of %d", next, n)
	}
	return buf, nil
}

// Save encodes state, stores it as the snapshot at head and prunes: it
// keeps the Kept newest at or below head.Seq and deletes any above it (left
// by a history that the chain no longer has), with every chunk that does
// not belong to a kept snapshot (those of an interrupted save). It returns
// the stored size. state must not change while Save runs (pass a
// domain.State.FrozenCopy).
//
// Its memory is the encoded state (in parts, not joined), one chunk and one
// batch of chunksPerBatch chunks.
func (s *Snapshots) Save(head eventstore.Head, state *domain.State) (int, error) {
	parts, err := state.MarshalSnapshotParts()
	if err != nil {
		return 0, err
	}
	length := 0
	for _, p := range parts {
		length += len(p)
	}
	header := appendHeader(make([]byte, 0, headerSize), head, length)
	sum := crc32.Update(0, castagnoli, header)
	for _, p := range parts {
		sum = crc32.Update(sum, castagnoli, p)
	}
	pieces := make([][]byte, 0, len(parts)+2)
	pieces = append(append(append(pieces, header), parts...), binary.BigEndian.AppendUint32(nil, sum))
	seqs, err := s.list(context.Background())
	if err != nil {
		return 0, err
	}
	return s.write(head.Seq, pieces, pruneRanges(head.Seq, seqs))
}

// pruneRanges returns the key ranges that a save at seq deletes, given the
// listed seqs: for each kind of key, everything outside the snapshots kept
// (the Kept-1 newest listed below seq, and seq).
func pruneRanges(seq uint64, listed []uint64) [][2][]byte {
	var keep []uint64
	for _, q := range listed {
		if q < seq {
			keep = append(keep, q)
		}
	}
	keep = append(keep[max(0, len(keep)-(Kept-1)):], seq)
	var ranges [][2][]byte
	for _, kind := range []byte{oldValueKey, chunkKey, indexKey} {
		lower := []byte{kind}
		for _, q := range keep {
			if upper := snapKey(kind, q); bytes.Compare(lower, upper) < 0 {
				ranges = append(ranges, [2][]byte{lower, upper})
			}
			lower = afterSeq(kind, q)
		}
		if upper := []byte{kind + 1}; bytes.Compare(lower, upper) < 0 {
			ranges = append(ranges, [2][]byte{lower, upper})
		}
	}
	return ranges
}

// write stores the envelope made of pieces (joined in order) as the
// snapshot at seq, in chunks of ChunkSize, chunksPerBatch of them a batch.
// The first batch deletes whatever was stored at seq; the last one holds
// the last chunks, the ranges to delete and the index key. It returns the
// envelope's size.
func (s *Snapshots) write(seq uint64, pieces [][]byte, prune [][2][]byte) (int, error) {
	// Room for the batch's chunks, their keys and the deletions.
	size := min(chunksPerBatch*ChunkSize, totalLen(pieces)) + 4<<10
	batch, err := s.aux.NewBatchSize(size)
	if err != nil {
		return 0, err
	}
	defer func() { _ = batch.Close() }()
	// A save interrupted after this batch leaves nothing listed at seq
	// and no chunk of an older save there past the new ones.
	for _, kind := range []byte{chunkKey, indexKey} {
		if err := batch.DeleteRange(snapKey(kind, seq), afterSeq(kind, seq)); err != nil {
			return 0, err
		}
	}
	var (
		chunk           = make([]byte, 0, min(ChunkSize, totalLen(pieces)))
		n, inBatch, sum = 0, 0, 0
	)
	put := func(b []byte) error {
		if inBatch == chunksPerBatch {
			if err := batch.Commit(); err != nil {
				return err
			}
			if s.committed != nil {
				if err := s.committed(n / chunksPerBatch); err != nil {
					return err
				}
			}
			batch.Reset() // and reuse its buffer
			inBatch = 0
		}
		if err := batch.Set(chunkKeyOf(seq, uint32(n)), b); err != nil {
			return err
		}
		n, inBatch, sum = n+1, inBatch+1, sum+len(b)
		return nil
	}
	for _, p := range pieces {
		for len(p) > 0 {
			if len(chunk) == 0 && len(p) >= ChunkSize {
				// A whole chunk within the piece: the batch copies it.
				if err := put(p[:ChunkSize]); err != nil {
					return 0, err
				}
				p = p[ChunkSize:]
				continue
			}
			k := min(len(p), ChunkSize-len(chunk))
			chunk, p = append(chunk, p[:k]...), p[k:]
			if len(chunk) == ChunkSize {
				if err := put(chunk); err != nil {
					return 0, err
				}
				chunk = chunk[:0]
			}
		}
	}
	if len(chunk) > 0 || n == 0 {
		if err := put(chunk); err != nil {
			return 0, err
		}
	}
	for _, r := range prune {
		if err := batch.DeleteRange(r[0], r[1]); err != nil {
			return 0, err
		}
	}
	if err := batch.Set(snapKey(indexKey, seq), nil); err != nil {
		return 0, err
	}
	if err := batch.Commit(); err != nil {
		return 0, err
	}
	return sum, nil
}

func totalLen(pieces [][]byte) int {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	return n
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

// StoredEnvelope returns the envelope stored at seq in aux (a Namespace),
// its chunks joined, checked as Newest checks the chunks but not opened.
// For tests that forge stored snapshots.
func StoredEnvelope(ctx context.Context, aux *eventstore.Aux, seq uint64) ([]byte, error) {
	return (&Snapshots{aux: aux}).readChunks(ctx, seq)
}

// StoreEnvelope stores value, an envelope (SealEnvelope) or anything else,
// as the snapshot at seq in aux, chunked and listed as Save stores one,
// without pruning. For tests that forge stored snapshots.
func StoreEnvelope(aux *eventstore.Aux, seq uint64, value []byte) error {
	_, err := (&Snapshots{aux: aux}).write(seq, [][]byte{value}, nil)
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendHeader appends the envelope header of a state of length bytes at
// head.
func appendHeader(b []byte, head eventstore.Head, length int) []byte {
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint64(b, head.Seq)
	b = append(b, head.Hash[:]...)
	b = binary.BigEndian.AppendUint16(b, domain.SnapshotVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(chunkCount(envelopeOverhead+length)))
	return binary.BigEndian.AppendUint64(b, uint64(length))
}

// maxLength bounds the state length a header may claim.
const maxLength = 1 << 40

// envelopeSize returns the chunk count and total size that the envelope
// whose first bytes are b says it has.
func envelopeSize(b []byte) (chunks, total int, err error) {
	if len(b) < headerSize {
		return 0, 0, fmt.Errorf("%d bytes are too short for the envelope header", len(b))
	}
	if b[0] != envelopeVersion {
		return 0, 0, fmt.Errorf("envelope version %d, this build reads %d", b[0], envelopeVersion)
	}
	c := binary.BigEndian.Uint32(b[headerSize-12:])
	length := binary.BigEndian.Uint64(b[headerSize-8:])
	if length > maxLength || int(c) != chunkCount(envelopeOverhead+int(length)) {
		return 0, 0, fmt.Errorf("header claims %d chunks for a state of %d bytes", c, length)
	}
	return int(c), envelopeOverhead + int(length), nil
}

// SealEnvelope returns the envelope of a snapshot of state (encoded) at
// head, in one piece (Save never builds it so). Exported for tests that
// forge stored snapshots.
func SealEnvelope(head eventstore.Head, state []byte) []byte {
	b := appendHeader(make([]byte, 0, envelopeOverhead+len(state)), head, len(state))
	b = append(b, state...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// OpenEnvelope checks an envelope (its chunks joined) and returns what it
// holds.
func OpenEnvelope(b []byte) (eventstore.Head, []byte, error) {
	_, total, err := envelopeSize(b)
	if err != nil {
		return eventstore.Head{}, nil, err
	}
	if total != len(b) {
		return eventstore.Head{}, nil, fmt.Errorf("envelope of %d bytes says it has %d", len(b), total)
	}
	sum := binary.BigEndian.Uint32(b[len(b)-4:])
	b = b[:len(b)-4]
	if crc32.Checksum(b, castagnoli) != sum {
		return eventstore.Head{}, nil, errors.New("checksum mismatch")
	}
	var head eventstore.Head
	head.Seq = binary.BigEndian.Uint64(b[1:9])
	copy(head.Hash[:], b[9:9+eventstore.HashSize])
	if v := binary.BigEndian.Uint16(b[9+eventstore.HashSize:]); v != domain.SnapshotVersion {
		return eventstore.Head{}, nil, fmt.Errorf("%w: state format %d, this build reads %d", domain.ErrSnapshotVersion, v, domain.SnapshotVersion)
	}
	return head, b[headerSize:], nil
}
