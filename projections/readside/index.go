package readside

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/lograte"
	"github.com/custos-dev/custos/projections/replay"
)

// Index fields, in the order a query prefers them (most selective first).
const (
	FieldSessionID = "session_id"
	FieldAgentID   = "agent_id"
	FieldKeyID     = "key_id"
	FieldSourceID  = "source_id"
	FieldAgentRole = "agent_role"
	FieldType      = "type"
	FieldDecision  = "decision"
	// fieldState lists every event that is not a decision: the changes of
	// keys, policies and agents that point-in-time replay folds.
	fieldState = "state"
)

var queryOrder = []string{FieldSessionID, FieldAgentID, FieldKeyID, FieldSourceID, FieldAgentRole, FieldType, FieldDecision}

// EventFilter selects events. Empty fields match everything; times are
// inclusive bounds (zero: unbounded).
type EventFilter struct {
	Type, KeyID, AgentID, AgentRole, SessionID, SourceID, Decision string
	From, To                                                       time.Time
}

func (f EventFilter) value(field string) string {
	switch field {
	case FieldSessionID:
		return f.SessionID
	case FieldAgentID:
		return f.AgentID
	case FieldKeyID:
		return f.KeyID
	case FieldSourceID:
		return f.SourceID
	case FieldAgentRole:
		return f.AgentRole
	case FieldType:
		return f.Type
	case FieldDecision:
		return f.Decision
	}
	return ""
}

// Fields returns the indexed values of one record: what a filter on each
// field matches. Decisions are indexed by their request; key, policy and
// agent changes by their subject. The actor is also indexed as key_id when
// it is a key.
func Fields(r eventstore.Record) (map[string][]string, error) {
	f := map[string][]string{FieldType: {r.Type}}
	add := func(field string, values ...string) {
		for _, v := range values {
			if v != "" {
				f[field] = append(f[field], v)
			}
		}
	}
	if strings.HasPrefix(r.Actor, "key_") {
		add(FieldKeyID, r.Actor)
	}
	ev, err := domain.Decode(r.Type, r.Payload)
	if err != nil {
		return nil, err
	}
	switch e := ev.(type) {
	case decision.Made:
		var m madeIndexed
		m.Request.SessionID, m.Request.AgentID, m.Request.AgentRole, m.Request.SourceID =
			e.Request.SessionID, e.Request.AgentID, e.Request.AgentRole, e.Request.SourceID
		m.Decision, m.KeyID, m.EvaluatedRole = e.Decision, e.KeyID, e.EvaluatedRole
		m.fields(r.Actor, func(field, value string) { add(field, value) })
		return f, nil
	case keys.KeyCreated:
		add(FieldKeyID, e.KeyID)
		add(FieldAgentID, e.AgentID)
	case keys.KeyRotated:
		add(FieldKeyID, e.OldKeyID, e.NewKey.KeyID)
		add(FieldAgentID, e.NewKey.AgentID)
	case keys.KeyRevoked:
		add(FieldKeyID, e.KeyID)
	case keys.KeyUsed:
		add(FieldKeyID, e.KeyID)
	case policy.PolicyCreated:
		add(FieldAgentRole, e.Policy.AgentRole)
	case policy.PolicyUpdated:
		add(FieldAgentRole, e.Policy.AgentRole)
	case policy.PolicyDeleted:
		add(FieldAgentRole, e.AgentRole)
	case agents.AgentRegistered:
		add(FieldAgentID, e.Agent.AgentID)
		add(FieldAgentRole, e.Agent.AgentRole)
	case agents.AgentUpdated:
		add(FieldAgentID, e.Agent.AgentID)
		add(FieldAgentRole, e.Agent.AgentRole)
	case agents.AgentStatusChanged:
		add(FieldAgentID, e.AgentID)
	}
	f[FieldKeyID] = dedupe(f[FieldKeyID])
	f[fieldState] = []string{""}
	return f, nil
}

// madeIndexed is the part of a decision.made payload the index reads: the
// same JSON names as decision.Made, so that decoding only these fields of a
// payload gives the values a full decision.Decode would.
type madeIndexed struct {
	Request struct {
		SessionID string `json:"session_id"`
		AgentID   string `json:"agent_id"`
		AgentRole string `json:"agent_role"`
		SourceID  string `json:"source_id"`
	} `json:"request"`
	Decision      string `json:"decision"`
	KeyID         string `json:"key_id"`
	EvaluatedRole string `json:"evaluated_role"`
}

// fields adds what a decision is indexed by (besides its type and its actor
// key): the one definition, used by Fields and by the fast path.
func (m *madeIndexed) fields(actor string, add func(field, value string)) {
	add(FieldSessionID, m.Request.SessionID)
	add(FieldAgentID, m.Request.AgentID)
	add(FieldAgentRole, m.Request.AgentRole)
	if m.EvaluatedRole != m.Request.AgentRole {
		add(FieldAgentRole, m.EvaluatedRole)
	}
	add(FieldSourceID, m.Request.SourceID)
	add(FieldDecision, m.Decision)
	if m.KeyID != actor {
		add(FieldKeyID, m.KeyID)
	}
}

// eachField calls fn for every indexed (field, value) of one record, exactly
// the pairs of Fields (in no particular order between fields). For a
// decision.made, by far the most common record, it decodes only the fields
// the index needs instead of the whole decision; every other type goes
// through Fields. Empty values are never given, except the state marker.
func eachField(typ, actor string, payload []byte, fn func(field, value string) error) error {
	if typ != decision.TypeMade {
		fields, err := Fields(eventstore.Record{Type: typ, Actor: actor, Payload: payload})
		if err != nil {
			return err
		}
		for field, values := range fields {
			for _, v := range values {
				if err := fn(field, v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var m madeIndexed
	// goccy/go-json decodes these seven fields of a decision about eight
	// times faster than encoding/json (0.5 µs against 4 µs, the largest
	// cost of indexing a decision), with the same results:
	// TestFastFieldsEqualFields and FuzzFastFields compare it with the
	// full decode through encoding/json.
	if err := gojson.Unmarshal(payload, &m); err != nil {
		return fmt.Errorf("domain: decode %s: decision: decode %s: %w", typ, typ, err)
	}
	var err error
	add := func(field, value string) {
		if value != "" && err == nil {
			err = fn(field, value)
		}
	}
	add(FieldType, typ)
	if strings.HasPrefix(actor, "key_") {
		add(FieldKeyID, actor)
	}
	m.fields(actor, add)
	return err
}

// fastFields is Fields through eachField: the same map, built without
// decoding a whole decision.
func fastFields(r eventstore.Record) (map[string][]string, error) {
	if r.Type != decision.TypeMade {
		return Fields(r)
	}
	f := make(map[string][]string, 8)
	err := eachField(r.Type, r.Actor, r.Payload, func(field, value string) error {
		f[field] = append(f[field], value)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func dedupe(list []string) []string {
	out := list[:0]
	for i, v := range list {
		seen := false
		for _, w := range list[:i] {
			seen = seen || v == w
		}
		if !seen {
			out = append(out, v)
		}
	}
	return out
}

// Matches reports whether a record with these fields passes f (times are
// checked by the caller).
func (f EventFilter) Matches(fields map[string][]string) bool {
	for _, field := range queryOrder {
		want := f.value(field)
		if want == "" {
			continue
		}
		found := false
		for _, v := range fields[field] {
			found = found || v == want
		}
		if !found {
			return false
		}
	}
	return true
}

// Index is the secondary index of one chain, a projection kept in the
// store's Pebble (eventstore.Aux): for every field value the seqs of the
// events that carry it, plus the seq it is complete through. It is rebuilt
// from the log: Run catches up from its checkpoint and follows new records.
// Queries never depend on it being current: they read the index up to its
// checkpoint and the log after it. Safe for concurrent use.
type Index struct {
	store  eventstore.LogStore
	chain  string
	aux    *eventstore.Aux
	wake   chan struct{}
	logger *slog.Logger
	limit  *lograte.Limiter // repeated catch-up errors
	// unusable is set when the index on disk has another format and the
	// store is read-only, so it cannot be rebuilt: queries then read the
	// log alone.
	unusable bool
}

var (
	checkpointKey = []byte("c")
	formatKey     = []byte("v")
)

// indexFormat names the layout of the index on disk. An index written in
// another layout (or before layouts were named) is dropped and rebuilt
// from the log when it is opened writable.
const indexFormat = "custos-index-2: posting blocks of uvarint seq deltas"

// NewIndex returns the index of chain in store. An index in an older
// format is dropped here, to be rebuilt by CatchUp; on a read-only store it
// is ignored instead.
func NewIndex(store eventstore.LogStore, chain string, logger *slog.Logger) (*Index, error) {
	aux, err := store.Aux("idx-" + chain)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	ix := &Index{store: store, chain: chain, aux: aux, wake: make(chan struct{}, 1), logger: logger,
		limit: lograte.New(lograte.DefaultEvery)}
	if err := ix.checkFormat(); err != nil {
		return nil, err
	}
	return ix, nil
}

// checkFormat makes sure the index on disk is in indexFormat: it stamps a
// new index, and drops one in another format so that CatchUp rebuilds it.
func (ix *Index) checkFormat() error {
	format, ok, err := ix.aux.Get(formatKey)
	if err != nil || string(format) == indexFormat {
		return err
	}
	_, indexed, err := ix.aux.Get(checkpointKey)
	if err != nil {
		return err
	}
	b, err := ix.aux.NewBatch()
	if errors.Is(err, eventstore.ErrReadOnly) {
		ix.unusable = indexed // nothing to ignore when there is no index
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	if ok || indexed {
		found := string(format)
		if !ok {
			found = "unnamed (the first layout)"
		}
		ix.logger.Info("index format changed; rebuilding it from the log", "chain", ix.chain,
			"found", found, "want", indexFormat)
		if err := b.DeleteRange([]byte{}, nil); err != nil {
			return err
		}
	}
	if err := b.Set(formatKey, []byte(indexFormat)); err != nil {
		return err
	}
	return b.Commit()
}

// Notify wakes Run; it never blocks. Wire it to the durable heads the
// store publishes (watermill, eventstore.Options.HeadTopic) so the index
// follows the log closely.
func (ix *Index) Notify() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// Catch-up pacing. A wake-up per commit would index a handful of records
// at a time, paying a Pebble batch commit and a checkpoint write for each
// group; instead Run coalesces: after a catch-up it waits catchUpEvery
// before the next, unless catchUpBacklog records are already waiting.
// Queries do not depend on it: they read the log after the checkpoint.
// catchUpEvery is short on purpose: at 15k decisions/s it still gathers
// hundreds of records per catch-up, while longer pauses (200 ms measured)
// make each catch-up a burst of CPU that shows in request p99.
const (
	catchUpEvery   = 20 * time.Millisecond
	catchUpBacklog = 4096
	// batchPostings is how many postings an index batch collects before it
	// is committed (with the checkpoint). Kept well below Pebble's
	// large-batch threshold (half a memtable): a larger batch becomes a
	// memtable of its own and is flushed as a small L0 table, which
	// multiplies compactions.
	batchPostings = 4096
)

// Run catches up and then follows the log until ctx ends. It also polls
// once a second, so a lost wake-up only delays the index. Errors are logged
// (repeats once per interval) and retried at the next poll; once the
// derived database has failed, Run logs that and waits for ctx without
// retrying: queries answer ErrDerivedFailed until a restart.
func (ix *Index) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	for {
		done, err := ix.CatchUp(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, eventstore.ErrDerivedFailed):
			ix.logger.Warn("audit index stopped: derived data failed; audit queries answer 503 until a restart rebuilds the index",
				"chain", ix.chain, "err", err)
			<-ctx.Done()
			return nil
		default:
			ix.limit.Log(ctx, ix.logger, slog.LevelWarn, "catch-up", "index catch-up", "chain", ix.chain, "err", err)
		}
		ix.follow(ctx, tick.C, pace, done, time.Now())
		pace.Stop() // since Go 1.23 this also drops a pending tick
		if ctx.Err() != nil {
			return nil
		}
	}
}

// follow waits until the next catch-up is due: on the poll tick, or on a
// wake-up once catchUpEvery has passed since the last catch-up (at) or
// catchUpBacklog records wait after done, whichever comes first.
func (ix *Index) follow(ctx context.Context, tick <-chan time.Time, pace *time.Timer, done uint64, at time.Time) {
	paced := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			return
		case <-pace.C:
			return
		case <-ix.wake:
			if head, err := ix.store.Head(ix.chain); err != nil || head.Seq >= done+catchUpBacklog {
				return
			}
			if paced {
				continue
			}
			d := catchUpEvery - time.Since(at)
			if d <= 0 {
				return
			}
			pace.Reset(d)
			paced = true
		}
	}
}

// Checkpoint returns the seq the index is complete through.
func (ix *Index) Checkpoint() (uint64, error) {
	if ix.unusable {
		return 0, nil
	}
	v, ok, err := ix.aux.Get(checkpointKey)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("projections: index checkpoint of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// CatchUp indexes every durable record after the checkpoint and returns the
// new checkpoint.
func (ix *Index) CatchUp(ctx context.Context) (uint64, error) {
	from, err := ix.Checkpoint()
	if err != nil {
		return 0, err
	}
	head, err := ix.store.Head(ix.chain)
	if err != nil {
		return 0, err
	}
	if head.Seq <= from {
		return from, nil
	}
	batch, err := ix.aux.NewBatch()
	if err != nil {
		return 0, err
	}
	defer func() { _ = batch.Close() }()
	done := from
	blocks := newPostingBlocks()
	flush := func() error {
		if err := blocks.write(batch); err != nil {
			return err
		}
		if err := batch.Set(checkpointKey, binary.BigEndian.AppendUint64(nil, done)); err != nil {
			return err
		}
		if err := batch.Commit(); err != nil {
			return err
		}
		_ = batch.Close()
		batch, err = ix.aux.NewBatch()
		// A long catch-up yields between batches so that it does not
		// hold a P for a whole scheduler slice while requests wait.
		runtime.Gosched()
		return err
	}
	err = ix.store.Scan(ctx, ix.chain, from+1, head.Seq, func(seq uint64, stored []byte) error {
		v, err := eventstore.ParseStored(stored)
		if err != nil {
			return fmt.Errorf("index seq %d: %w", seq, err)
		}
		err = eachField(string(v.Type), string(v.Actor), v.Payload, func(field, value string) error {
			if posted(field, value) {
				blocks.add(field, value, v.Seq)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index seq %d: %w", v.Seq, err)
		}
		done = v.Seq
		if blocks.n >= batchPostings {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return done, nil
}

// posted reports whether the index keeps a posting list for field = value.
// Values that most events share are not posted: every decision's type
// (decision.made) and outcome (ALLOW or DENY). A filter on them alone is
// answered by reading the log, where matches are dense, so a page fills
// after a few records; posting them would add two of every decision's
// seven index writes for no gain. Fields still reports them, for matching.
func posted(field, value string) bool {
	switch field {
	case FieldDecision:
		return false
	case FieldType:
		return value != decision.TypeMade
	}
	return true
}

// Posting lists are stored in blocks: one key per list and catch-up batch,
// 'p' field 0x00 len(value) value lastSeq, whose value is the block's seqs
// in ascending order as uvarints, the first absolute and each next one the
// difference to the one before. Catch-ups index seqs in order, so the blocks
// of a list never overlap and ordering them by their last seq orders their
// seqs; the first block that can hold a seq > s is the first whose key is at
// or after lastSeq s+1. A decision adds one seq to five lists: blocks write
// one key per list and batch instead of one per posting, which keeps the
// derived database's memtable inserts and compactions off the hot path.

// postingKey is the key of the block of field = value that ends at lastSeq.
func postingKey(field, value string, lastSeq uint64) []byte {
	return appendPostingKey(make([]byte, 0, 1+len(field)+1+2+len(value)+8), field, value, lastSeq)
}

// appendPostingKey appends postingKey(field, value, lastSeq) to k.
func appendPostingKey(k []byte, field, value string, lastSeq uint64) []byte {
	k = append(k, 'p')
	k = append(k, field...)
	k = append(k, 0x00)
	k = binary.BigEndian.AppendUint16(k, uint16(len(value)))
	k = append(k, value...)
	return binary.BigEndian.AppendUint64(k, lastSeq)
}

// postingList names one list: the events whose field has value.
type postingList struct{ field, value string }

// postingBlocks collects the postings of one catch-up batch, list by list.
// Not safe for concurrent use.
type postingBlocks struct {
	lists    map[postingList][]uint64
	n        int // postings added since the last write
	key, val []byte
}

func newPostingBlocks() *postingBlocks {
	return &postingBlocks{lists: make(map[postingList][]uint64)}
}

// add posts seq to field = value; seqs must come in ascending order.
func (p *postingBlocks) add(field, value string, seq uint64) {
	id := postingList{field, value}
	p.lists[id] = append(p.lists[id], seq)
	p.n++
}

// write puts one block per list into b and starts over.
func (p *postingBlocks) write(b *eventstore.AuxBatch) error {
	for id, seqs := range p.lists {
		p.key = appendPostingKey(p.key[:0], id.field, id.value, seqs[len(seqs)-1])
		p.val = appendSeqBlock(p.val[:0], seqs)
		if err := b.Set(p.key, p.val); err != nil {
			return err
		}
	}
	clear(p.lists)
	p.n = 0
	return nil
}

// appendSeqBlock appends the block encoding of ascending seqs to dst.
func appendSeqBlock(dst []byte, seqs []uint64) []byte {
	prev := uint64(0)
	for _, seq := range seqs {
		dst = binary.AppendUvarint(dst, seq-prev)
		prev = seq
	}
	return dst
}

// errCorruptBlock reports a posting block that does not decode to strictly
// ascending seqs ending at its key's seq.
var errCorruptBlock = errors.New("projections: corrupt index posting block")

// eachSeqInBlock calls fn for every seq of block, whose key says it ends at
// lastSeq, in order, until fn returns an error.
func eachSeqInBlock(block []byte, lastSeq uint64, fn func(seq uint64) error) error {
	seq := uint64(0)
	for len(block) > 0 {
		delta, n := binary.Uvarint(block)
		if n <= 0 || delta == 0 || seq+delta < seq {
			return errCorruptBlock
		}
		block, seq = block[n:], seq+delta
		if err := fn(seq); err != nil {
			return err
		}
	}
	if seq != lastSeq {
		return errCorruptBlock
	}
	return nil
}

// errStop ends a scan early without error.
var errStop = errors.New("stop")

// Query calls fn for every event of the chain with seq > afterSeq that
// passes f, in seq order, until fn returns an error or limit events were
// given (limit 0: no limit). It returns the seq of the last event given and
// whether more may follow. It reads the most selective index up to the
// index's checkpoint and the log after it, so it sees every durable event.
func (ix *Index) Query(ctx context.Context, f EventFilter, afterSeq uint64, limit int, fn func(r eventstore.Record) error) (last uint64, more bool, err error) {
	checkpoint, err := ix.Checkpoint()
	if err != nil {
		return 0, false, err
	}
	head, err := ix.store.Head(ix.chain)
	if err != nil {
		return 0, false, err
	}
	if !f.From.IsZero() {
		first, err := ix.firstSeqFrom(ctx, f.From, head.Seq)
		if err != nil {
			return 0, false, err
		}
		afterSeq = max(afterSeq, first-1)
	}
	n := 0
	emit := func(r eventstore.Record) error {
		if !f.To.IsZero() && r.Time.After(f.To) {
			return errStop // record times never decrease along a chain
		}
		if !f.From.IsZero() && r.Time.Before(f.From) {
			return nil
		}
		fields, err := fastFields(r)
		if err != nil {
			return fmt.Errorf("query seq %d: %w", r.Seq, err)
		}
		if !f.Matches(fields) {
			return nil
		}
		if limit > 0 && n == limit {
			more = true
			return errStop
		}
		n++
		last = r.Seq
		return fn(r)
	}

	field, value := "", ""
	for _, candidate := range queryOrder {
		if v := f.value(candidate); v != "" && posted(candidate, v) {
			field, value = candidate, v
			break
		}
	}
	tailFrom := afterSeq + 1
	if field != "" && checkpoint > afterSeq {
		err = ix.postings(ctx, field, value, afterSeq, checkpoint, func(seq uint64) error {
			r, err := ix.store.Get(ctx, ix.chain, seq)
			if err != nil {
				return err
			}
			return emit(r)
		})
		tailFrom = checkpoint + 1
	}
	if err == nil {
		err = ix.store.Records(ctx, ix.chain, tailFrom, head.Seq, emit)
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	return last, more, err
}

// errPastRange ends a posting scan at the end of the asked range.
var errPastRange = errors.New("past range")

// postings calls fn for the seqs in (after, through] of field = value, in
// order, until fn returns an error, which postings returns as it is.
func (ix *Index) postings(ctx context.Context, field, value string, after, through uint64, fn func(seq uint64) error) error {
	if after == ^uint64(0) {
		return nil
	}
	lower := postingKey(field, value, after+1)
	upper := append(postingKey(field, value, ^uint64(0)), 0x00) // past every block of the list
	err := ix.aux.Scan(ctx, lower, upper, func(key, block []byte) error {
		err := eachSeqInBlock(block, binary.BigEndian.Uint64(key[len(key)-8:]), func(seq uint64) error {
			switch {
			case seq <= after:
				return nil
			case seq > through:
				return errPastRange
			}
			return fn(seq)
		})
		if errors.Is(err, errCorruptBlock) {
			return fmt.Errorf("%w %s=%q at %x", err, field, value, key)
		}
		return err
	})
	if errors.Is(err, errPastRange) {
		return nil
	}
	return err
}

// Changes calls fn, in seq order, for every key, policy and agent change
// (every event that is not a decision) after seq after, until fn returns an
// error, which Changes returns as it is. It reads the index's state list up
// to its checkpoint and the log after it.
func (ix *Index) Changes(ctx context.Context, after uint64, fn func(r eventstore.Record) error) error {
	checkpoint, err := ix.Checkpoint()
	if err != nil {
		return err
	}
	head, err := ix.store.Head(ix.chain)
	if err != nil {
		return err
	}
	if checkpoint > after {
		err = ix.postings(ctx, fieldState, "", after, checkpoint, func(seq uint64) error {
			r, err := ix.store.Get(ctx, ix.chain, seq)
			if err != nil {
				return err
			}
			return fn(r)
		})
		if err != nil {
			return err
		}
	}
	return ix.store.Records(ctx, ix.chain, max(checkpoint, after)+1, head.Seq, func(r eventstore.Record) error {
		if r.Type == decision.TypeMade {
			return nil
		}
		return fn(r)
	})
}

// ReplayAt folds every key, policy and agent change with a time at or
// before at into a new state: the tables as they were at that instant,
// built with the same Apply as live state. It starts from the newest
// snapshot that covers no record after at, when there is one, and folds
// the changes after it; decisions are skipped (sessions are not part of
// point-in-time tables). A time before genesis gives the empty state.
func (ix *Index) ReplayAt(ctx context.Context, at time.Time) (*domain.State, error) {
	if err := ix.store.DerivedFailed(); err != nil {
		return nil, err
	}
	state, from := domain.NewState(), uint64(0)
	if !at.After(time.Time{}) {
		// Year 1 or before: before any record. (The zero time means "no
		// limit" to the snapshot and fold helpers, so it must not reach
		// them.)
		return state, nil
	}
	aux, err := ix.store.Aux(replay.Namespace(ix.chain))
	if err != nil {
		return nil, err
	}
	if snap, head, ok, err := replay.OpenSnapshots(ix.store, ix.chain, aux).Newest(ctx, at, ix.logger); err != nil {
		return nil, err
	} else if ok {
		state, from = snap, head.Seq
	}
	err = ix.Changes(ctx, from, func(r eventstore.Record) error {
		if r.Time.After(at) {
			return errStop
		}
		return replay.Apply(state, r)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return state, nil
}

// firstSeqFrom returns the first seq in [1, head] whose time is at or after
// from (head+1 when none), by binary search: record times never decrease.
func (ix *Index) firstSeqFrom(ctx context.Context, from time.Time, head uint64) (uint64, error) {
	lo, hi := uint64(1), head+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := ix.store.Get(ctx, ix.chain, mid)
		if err != nil {
			return 0, err
		}
		if r.Time.Before(from) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
