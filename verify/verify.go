// Package verify replays hash chains from genesis and names the first record
// that breaks them.
//
// It depends only on eventstore, so it can audit a live store, a data folder
// opened read-only, or an export file, with no domain knowledge: it checks
// structure, sequence, hashes and links, never payload meaning. It never reads
// snapshots or projections.
package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// Problem kinds, stable wire values.
const (
	// KindMalformed: the stored bytes do not parse as a record.
	KindMalformed = "malformed"
	// KindUnknownVersion: the record's hash_version is not one this verifier knows.
	KindUnknownVersion = "unknown_hash_version"
	// KindChainMismatch: the record names another chain than the one it is stored in.
	KindChainMismatch = "chain_mismatch"
	// KindSeqMismatch: the record's own seq differs from the position it is stored at.
	KindSeqMismatch = "seq_mismatch"
	// KindSeqGap: a sequence number is missing before this record.
	KindSeqGap = "seq_gap"
	// KindHashMismatch: the recomputed hash differs from the stored one.
	KindHashMismatch = "hash_mismatch"
	// KindLinkBroken: prev_hash differs from the previous record's hash.
	KindLinkBroken = "link_broken"
	// KindHeadMismatch: the stored chain head differs from the last record.
	KindHeadMismatch = "head_mismatch"
	// KindBadID: the record's id is not a ULID (26 characters of Crockford
	// base32, upper case).
	KindBadID = "bad_id"
	// KindTimeDecreased: the record's time is before the previous record's.
	KindTimeDecreased = "time_decreased"
)

// Report is the result of verifying one chain. Its JSON form is the contract
// of `custos verify` and GET /v1/audit/verify.
type Report struct {
	// Valid is true when every check passed.
	Valid bool `json:"valid"`
	// Chain is the chain that was checked.
	Chain string `json:"chain"`
	// Total is the number of records found.
	Total uint64 `json:"total"`
	// Chained is the number of records whose hash and link were checked and
	// held, counted up to the first problem.
	Chained uint64 `json:"chained"`
	// Legacy counts records with a hash_version this verifier cannot check
	// but accepts. Always 0 with hash_version 1; kept for later versions.
	Legacy uint64 `json:"legacy"`
	// BrokenAt is the id of the first broken record, or nil. For a truncated
	// tail (head_mismatch) it is the id of the last record present.
	BrokenAt *string `json:"broken_at"`
	// BrokenAtSeq is the position in the chain (the seq expected there) of
	// the record BrokenAt names, or nil with it: unlike an id, it tells two
	// copies of one record apart.
	BrokenAtSeq *uint64 `json:"broken_at_seq"`
	// Detail describes the first problem, or is nil.
	Detail *Problem `json:"detail,omitempty"`
	// HeadSeq and HeadHash are the head the chain was checked against.
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// AnchorPrevHash is the prev_hash the check started from: 64 zeros from
	// genesis, or the first record's prev_hash for an export range.
	AnchorPrevHash string `json:"anchor_prev_hash"`
	// AnchorSeq is the seq the check started at: 1 from genesis, or the
	// first record's seq for an export range.
	AnchorSeq uint64 `json:"anchor_seq"`
	// Checkpoint is the result of the check against a signed checkpoint
	// (WithCheckpoint), or nil.
	Checkpoint *CheckpointResult `json:"checkpoint,omitempty"`
	// DurationMS is how long the check took.
	DurationMS float64 `json:"duration_ms"`
}

// Problem is the first failed check of a chain.
type Problem struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	Message  string `json:"message"`
}

// Checker checks records of one chain one at a time, in order. It is the
// single implementation of the chain rules; Store and export verification
// both feed it. Not safe for concurrent use.
type Checker struct {
	chain    []byte
	nextSeq  uint64
	prevHash eventstore.Hash
	last     eventstore.View
	lastID   string
	// lastTime is the time of the last chained record, when haveTime.
	lastTime int64
	haveTime bool
	report   Report
	start    time.Time
	tree     *treeCheck // nil without a checkpoint
}

// NewChecker starts a check of chain at firstSeq (1 for genesis) with prev as
// the expected prev_hash of the first record (eventstore.GenesisPrevHash() for
// genesis).
func NewChecker(chain string, firstSeq uint64, prev eventstore.Hash) *Checker {
	c := &Checker{chain: []byte(chain), nextSeq: firstSeq, prevHash: prev, start: time.Now()}
	c.report.AnchorPrevHash = hex.EncodeToString(prev[:])
	c.report.AnchorSeq = firstSeq
	c.report.Chain = chain
	return c
}

// Broken reports whether a problem has been found.
func (c *Checker) Broken() bool { return c.report.Detail != nil }

// Add checks the stored record found at position seq. After the first
// problem it only counts records.
func (c *Checker) Add(seq uint64, stored []byte) {
	c.report.Total++
	if c.Broken() {
		return
	}
	v, err := eventstore.ParseStored(stored)
	if err != nil {
		c.fail(seq, "", KindMalformed, "", "", err.Error())
		return
	}
	c.check(seq, v)
}

func (c *Checker) check(seq uint64, v eventstore.View) {
	id := string(v.ID)
	switch {
	case v.HashVersion != eventstore.HashVersion:
		c.fail(seq, id, KindUnknownVersion, fmt.Sprint(eventstore.HashVersion), fmt.Sprint(v.HashVersion), "record uses a hash_version this verifier does not know")
	case !bytes.Equal(v.Chain, c.chain):
		c.fail(seq, id, KindChainMismatch, string(c.chain), string(v.Chain), "record belongs to another chain")
	case v.Seq != seq:
		c.fail(seq, id, KindSeqMismatch, fmt.Sprint(seq), fmt.Sprint(v.Seq), "record is stored at another position than its own seq (moved or swapped)")
	case seq != c.nextSeq:
		c.fail(seq, id, KindSeqGap, fmt.Sprint(c.nextSeq), fmt.Sprint(seq), "sequence numbers are missing before this record (deleted record)")
	default:
		if h := eventstore.LeafHash(v.Encoding); !bytes.Equal(h[:], v.Hash) {
			c.fail(seq, id, KindHashMismatch, hex.EncodeToString(h[:]), hex.EncodeToString(v.Hash), "recomputed hash differs from the stored hash (record altered)")
			return
		}
		if !bytes.Equal(v.PrevHash, c.prevHash[:]) {
			c.fail(seq, id, KindLinkBroken, hex.EncodeToString(c.prevHash[:]), hex.EncodeToString(v.PrevHash), "prev_hash differs from the previous record's hash (record inserted or replaced)")
			return
		}
		if !isULID(v.ID) {
			c.fail(seq, id, KindBadID, "26 characters of Crockford base32, upper case (a ULID)", id, "record id is not a ULID")
			return
		}
		if c.haveTime && v.TimeNanos < c.lastTime {
			c.fail(seq, id, KindTimeDecreased, "at or after "+time.Unix(0, c.lastTime).UTC().Format(time.RFC3339Nano),
				time.Unix(0, v.TimeNanos).UTC().Format(time.RFC3339Nano), "record time is before the previous record's (records reordered or time rewritten)")
			return
		}
		c.lastTime, c.haveTime = v.TimeNanos, true
		copy(c.prevHash[:], v.Hash)
		if c.tree != nil {
			c.tree.add(v.Hash)
		}
		c.nextSeq = seq + 1
		c.lastID = id
		c.report.Chained++
	}
}

// FailAt records a problem found outside the record checks (for example an
// export line that does not parse).
func (c *Checker) FailAt(seq uint64, id, kind, message string) {
	c.report.Total++
	if !c.Broken() {
		c.fail(seq, id, kind, "", "", message)
	}
}

func (c *Checker) fail(seq uint64, id, kind, expected, got, msg string) {
	c.report.Detail = &Problem{Seq: seq, Kind: kind, Expected: expected, Got: got, Message: msg}
	if id != "" {
		c.report.BrokenAt, c.report.BrokenAtSeq = &id, &seq
	}
}

// Finish compares the stored head with the last checked record and returns
// the report. Pass checkHead false when there is no stored head (an export).
func (c *Checker) Finish(head eventstore.Head, checkHead bool) Report {
	r := c.report
	if checkHead {
		r.HeadSeq = head.Seq
		r.HeadHash = hex.EncodeToString(head.Hash[:])
	} else {
		r.HeadSeq = c.nextSeq - 1
		r.HeadHash = hex.EncodeToString(c.prevHash[:])
	}
	if r.Detail == nil && checkHead {
		lastSeq := c.nextSeq - 1
		if head.Seq != lastSeq || head.Hash != c.prevHash {
			r.Detail = &Problem{
				Seq:      head.Seq,
				Kind:     KindHeadMismatch,
				Expected: fmt.Sprintf("seq %d hash %x", head.Seq, head.Hash),
				Got:      fmt.Sprintf("seq %d hash %x", lastSeq, c.prevHash),
				Message:  "stored chain head differs from the last record (truncated or extended tail)",
			}
			if c.lastID != "" {
				id, at := c.lastID, c.nextSeq-1
				r.BrokenAt, r.BrokenAtSeq = &id, &at
			}
		}
	}
	if c.tree != nil {
		c.tree.finish(&r, string(c.chain))
	}
	r.Valid = r.Detail == nil
	r.DurationMS = float64(time.Since(c.start).Microseconds()) / 1000
	return r
}

// Store verifies chain in s from genesis. It reads the head first, so on a
// live store it checks every record durable at that moment without blocking
// writers (Scan reads a consistent Pebble view, no lock is held). The error
// is non-nil only when reading failed; a broken chain is a Report with
// Valid false.
//
// A chain of at least two segments' worth of records (segmentRecords) is
// checked in up to GOMAXPROCS segments at once, each starting from the
// stored hash and time of the record before it, and the segments' results
// are then joined in order: the report is the one a single pass from
// genesis gives (the same first problem, counts and root), in a fraction
// of the time. Where a segment's start cannot be read as a record, Store
// checks the chain in one pass instead.
func Store(ctx context.Context, s *eventstore.Store, chain string, opts ...Option) (Report, error) {
	o := newOptions(opts)
	head, err := s.Head(chain)
	if err != nil {
		return Report{}, fmt.Errorf("verify %s: %w", chain, err)
	}
	// A live store may commit more records while we scan: check up to the
	// head read above. Nothing writes a read-only store, so there we also
	// look past the head for records appended behind its back.
	to := head.Seq
	if s.ReadOnly() {
		to = math.MaxUint64
	}
	var c *Checker
	if bounds := o.segments(head.Seq); len(bounds) > 1 {
		c, err = checkSegments(ctx, s, chain, bounds, to, o)
	}
	if err == nil && c == nil {
		c, err = checkRange(ctx, s, chain, 1, to, eventstore.GenesisPrevHash(), nil, o, o.tick)
	}
	if err != nil {
		return Report{}, fmt.Errorf("verify %s: %w", chain, err)
	}
	return c.Finish(head, true), nil
}

// checkRange checks chain's records from to to (inclusive) with a new
// Checker, expecting prev as the first one's prev_hash and, when prevTime
// is non-nil, a time at or after it.
func checkRange(ctx context.Context, s *eventstore.Store, chain string, from, to uint64, prev eventstore.Hash, prevTime *int64, o options, tick func(uint64)) (*Checker, error) {
	c := NewChecker(chain, from, prev)
	if prevTime != nil {
		c.lastTime, c.haveTime = *prevTime, true
	}
	if o.checkpoint != nil {
		c.tree = newTreeCheckFrom(*o.checkpoint, from-1)
	}
	err := s.Scan(ctx, chain, from, to, func(seq uint64, stored []byte) error {
		c.Add(seq, stored)
		tick(c.report.Total)
		return nil
	})
	return c, err
}

// checkSegments checks the segments that start at bounds[i] (the last ends
// at to) at once and joins them into the Checker a single pass would
// leave. It returns a nil Checker when the record before a segment cannot
// be read as a record: the caller then checks in one pass, which reports
// that record's problem where a single pass finds it.
func checkSegments(ctx context.Context, s *eventstore.Store, chain string, bounds []uint64, to uint64, o options) (*Checker, error) {
	type anchor struct {
		hash eventstore.Hash
		time int64
	}
	anchors := make([]anchor, len(bounds))
	anchors[0].hash = eventstore.GenesisPrevHash()
	for i := 1; i < len(bounds); i++ {
		seq, found := bounds[i]-1, false
		err := s.Scan(ctx, chain, seq, seq, func(_ uint64, stored []byte) error {
			v, err := eventstore.ParseStored(stored)
			if err != nil || len(v.Hash) != eventstore.HashSize {
				return nil
			}
			copy(anchors[i].hash[:], v.Hash)
			anchors[i].time, found = v.TimeNanos, true
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, nil
		}
	}
	var (
		mu      sync.Mutex
		counted uint64
		lastOf  = make([]uint64, len(bounds))
	)
	// Progress counts every segment's records; calls are serialized.
	tickFor := func(i int) func(uint64) {
		return func(n uint64) {
			if o.progress == nil || n%65536 != 0 {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			counted += n - lastOf[i]
			lastOf[i] = n
			o.progress(counted)
		}
	}
	checkers := make([]*Checker, len(bounds))
	errs := make([]error, len(bounds))
	var wg sync.WaitGroup
	for i, from := range bounds {
		end := to
		if i+1 < len(bounds) {
			end = bounds[i+1] - 1
		}
		var prevTime *int64
		if i > 0 {
			prevTime = &anchors[i].time
		}
		wg.Go(func() {
			checkers[i], errs[i] = checkRange(ctx, s, chain, from, end, anchors[i].hash, prevTime, o, tickFor(i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := checkers[0]
	for _, next := range checkers[1:] {
		c.join(next)
	}
	return c, nil
}

// join continues c, which checked the segment before next's, with next's
// result, as if c had gone on to check next's records itself. After c's
// first problem it only counts next's records, as Add does.
func (c *Checker) join(next *Checker) {
	c.report.Total += next.report.Total
	if c.Broken() {
		return
	}
	// next started where c ended and from the hash c ended with: the
	// anchor is the stored hash of c's last record, which c recomputed.
	if c.nextSeq != next.report.AnchorSeq || hex.EncodeToString(c.prevHash[:]) != next.report.AnchorPrevHash {
		c.fail(next.report.AnchorSeq, "", KindLinkBroken, hex.EncodeToString(c.prevHash[:]), next.report.AnchorPrevHash,
			"the chain changed while it was checked in segments")
		return
	}
	c.report.Chained += next.report.Chained
	c.report.Detail, c.report.BrokenAt, c.report.BrokenAtSeq = next.report.Detail, next.report.BrokenAt, next.report.BrokenAtSeq
	c.nextSeq, c.prevHash = next.nextSeq, next.prevHash
	if next.haveTime {
		c.lastTime, c.haveTime = next.lastTime, true
	}
	if next.lastID != "" {
		c.lastID = next.lastID
	}
	if c.tree != nil {
		c.tree.join(next.tree)
	}
}

// Option tunes Store and Export.
type Option func(*options)

type options struct {
	// segmentRecords is the least length of a segment of Store's check
	// (see Store), 0 meaning defaultSegmentRecords; segmentsAtMost caps
	// their number, 0 meaning GOMAXPROCS. Tests set both.
	segmentRecords uint64
	segmentsAtMost int
	progress       func(records uint64)
	checkpoint     *checkpoint.Checkpoint
	chain          *string
}

// ExpectChain makes Export check the file against chain: its records must
// name it (otherwise the first one is chain_mismatch). Without it, Export
// checks the chain its first line names. Store ignores it (it is given
// the chain).
func ExpectChain(chain string) Option {
	return func(o *options) { o.chain = &chain }
}

// OnProgress has fn called with the number of records checked so far, about
// every 65536 records: from the checking goroutine, or, when Store checks
// in segments, from one of them at a time (calls never overlap). Keep fn
// quick.
func OnProgress(fn func(records uint64)) Option {
	return func(o *options) { o.progress = fn }
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// defaultSegmentRecords is the least number of records a segment of
// Store's check has: below twice this a chain is checked in one pass
// (about a second of one core).
const defaultSegmentRecords = 256 << 10

// segments returns the first seq of each segment Store checks a chain of
// n records in: one per available core, each at least segmentRecords
// long; a single segment (1) for a short chain.
func (o options) segments(n uint64) []uint64 {
	size := o.segmentRecords
	if size == 0 {
		size = defaultSegmentRecords
	}
	most := o.segmentsAtMost
	if most == 0 {
		most = runtime.GOMAXPROCS(0)
	}
	k := min(uint64(most), n/size)
	if k < 2 {
		return []uint64{1}
	}
	bounds := make([]uint64, k)
	for i := range bounds {
		bounds[i] = 1 + uint64(i)*(n/k)
	}
	return bounds
}

func (o options) tick(n uint64) {
	if o.progress != nil && n%65536 == 0 {
		o.progress(n)
	}
}

// isULID reports whether id is a ULID as custos writes it: 26 characters of
// Crockford's base32 alphabet, upper case, whose first character is at
// most 7 (a 128-bit value).
func isULID(id []byte) bool {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	if len(id) != 26 || id[0] > '7' {
		return false
	}
	for _, ch := range id {
		if !bytes.ContainsRune([]byte(alphabet), rune(ch)) {
			return false
		}
	}
	return true
}
