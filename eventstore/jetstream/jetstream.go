// Package jetstream is an eventstore.Log whose source of truth is a NATS
// JetStream stream, so that the log survives the loss of a machine and
// every node can serve reads.
//
// # Stream and subjects
//
// One stream (Options.Stream, default "CUSTOS_LOG") holds every chain, one
// subject per chain: <Options.Subjects>.<chain>, default
// custos.log.<chain>. The stream uses file storage, denies deletes and
// purges, allows atomic batch publish and keeps everything (no limits).
//
// Each group commit of a chain is one atomic batch (nats-server >= 2.12):
// one message per record, data the record's stored bytes (see
// eventstore.ParseStored), headers Custos-Kind "record" and Custos-Seq,
// then one commit message, data the signed checkpoint of the new tree size
// (empty without a signer), headers Custos-Kind "commit", Custos-Seq
// (the last record's seq) and Custos-Writer (an id of the Log that wrote
// it, new at each Open). The first message carries
// Nats-Expected-Last-Subject-Sequence, the stream sequence of the chain's
// previous commit message: two nodes that both sequence a chain cannot
// both append, the second batch is refused whole and its waiting callers
// get ErrNotSequencer.
//
// # Durability
//
// A record is durable once JetStream acknowledged its batch: the stream's
// replicas (a quorum of Options.Replicas) stored it, each fsyncing before
// it answers when the servers run with sync_interval: always (Open refuses
// a replicated stream otherwise, see Options.Monitor). Only then is the
// batch written to the node's local Pebble store, from which every read is
// served, so reads show durable records only. The local fsync makes
// restarts fast; losing the local folder loses nothing, the follower
// refills it from the stream.
//
// # Followers
//
// Every Log follows the whole stream into its local store (records, tree,
// and the leader's own signed checkpoints, checked against the tree), so
// any node answers Head, Get, Scan, proofs and SignedCheckpoint. A node
// may sequence a chain once it has applied everything the stream holds for
// it; sequencing is decided by the compare-and-set alone.
package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/custos-dev/custos/eventstore"
)

// ErrNotSequencer means another node appended to the chain first: this
// node's batch was refused whole (or never sent, as the node knew it was
// behind), and none of its records is durable. It wraps
// eventstore.ErrFenced; retry (HTTP 503) once the node has caught up or
// through the node that sequences the chain.
var ErrNotSequencer = fmt.Errorf("%w: not the chain's sequencer", eventstore.ErrFenced)

// ErrNotSyncAlways means a replicated stream's servers do not fsync every
// write (sync_interval: always), so an acknowledged write could be lost.
var ErrNotSyncAlways = errors.New("jetstream: servers must run with sync_interval: always")

// Message headers of the stream (see the package doc).
const (
	HeaderKind = "Custos-Kind"
	HeaderSeq  = "Custos-Seq"
	// HeaderWriter, on commit messages, names the Log that wrote the batch
	// (random, new at each Open).
	HeaderWriter = "Custos-Writer"
	KindRecord   = "record"
	KindCommit   = "commit"
)

// maxBatch is nats-server's default cap on messages per atomic batch;
// one is the commit message.
const maxBatch = 1000

// Options configure a Log.
type Options struct {
	// Conn is the connection to the NATS servers; the Log does not close
	// it. Required.
	Conn *nats.Conn
	// Store configures the local Pebble store the stream is materialized
	// into (Dir required). Replicator and MaxBatchRecords are set by Open.
	// Every node that may sequence a chain signs with the same Signer key,
	// as followers check the leader's checkpoints against it.
	Store eventstore.Options
	// Stream names the stream. Default "CUSTOS_LOG".
	Stream string
	// Subjects is the subject prefix; chain c is <Subjects>.<c>. Default
	// "custos.log".
	Subjects string
	// Replicas of the stream when Open creates it: 3 in production, 1 for
	// a single server. Default 1.
	Replicas int
	// SyncChecked is how Open confirms that the servers fsync every write
	// before it uses a stream with more than one replica: nil refuses such
	// a stream. EmbeddedSyncCheck and MonitorSyncCheck make one.
	SyncChecked func(ctx context.Context) error
	// AckTimeout bounds the wait for a batch's acknowledgement. Default 5s.
	AckTimeout time.Duration
	// Logger receives follower warnings. Default Store.Logger or slog.Default.
	Logger *slog.Logger
}

// Log is an eventstore.LogStore backed by a JetStream stream and
// materialized into a local eventstore.Store; see the package doc. Reads
// and derived data (Aux) come from the local store. Safe for concurrent
// use; Close it once.
type Log struct {
	*eventstore.Store
	opts   Options
	js     jetstream.JetStream
	stream jetstream.Stream

	mu     sync.Mutex
	chains map[string]*chainState
	// applied is closed and replaced (under mu) each time the follower
	// applies a commit, waking appends that wait for it to catch up.
	applied chan struct{}

	// gate, once set (StartSequencer), decides which chains this node
	// may append to. gateMu is held for reading from an Enqueue's check
	// of the gate until its records are queued, and for writing while the
	// follower closes a chain that another writer appended to, so that no
	// Enqueue passes the gate before and queues after that.
	gate   atomic.Pointer[Sequencer]
	gateMu sync.RWMutex
	// writer identifies this Log's batches in the stream (HeaderWriter).
	writer string

	stopFollow context.CancelFunc
	followDone chan struct{}
	followErr  error
	closeOnce  sync.Once
	closeErr   error
}

var _ eventstore.LogStore = (*Log)(nil)

// chainState is what the node knows of a chain's tail in the stream.
type chainState struct {
	// seq is the chain seq of the last commit this node applied or
	// published, at stream sequence streamSeq.
	seq, streamSeq uint64
	// tail is the highest chain seq seen in the stream (>= seq).
	tail uint64
	// known is false until seq and streamSeq were read from the stream.
	known bool
}

// Open creates the stream if it is missing, checks sync for a replicated
// stream, opens the local store and starts following the stream. The
// caller closes the Log, then Conn.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Conn == nil {
		return nil, errors.New("jetstream: Options.Conn is required")
	}
	if opts.Stream == "" {
		opts.Stream = "CUSTOS_LOG"
	}
	if opts.Subjects == "" {
		opts.Subjects = "custos.log"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = opts.Store.Logger
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:               opts.Stream,
		Subjects:           []string{opts.Subjects + ".*"},
		Storage:            jetstream.FileStorage,
		Replicas:           opts.Replicas,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowAtomicPublish: true,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: create stream %s: %w", opts.Stream, err)
	}
	if info := stream.CachedInfo(); info.Config.Replicas > 1 {
		if opts.SyncChecked == nil {
			return nil, fmt.Errorf("%w: stream %s has %d replicas and no sync check was given", ErrNotSyncAlways, opts.Stream, info.Config.Replicas)
		}
		if err := opts.SyncChecked(ctx); err != nil {
			return nil, err
		}
	}
	l := &Log{opts: opts, js: js, stream: stream, chains: map[string]*chainState{}, applied: make(chan struct{}), writer: nuid.Next()}
	so := opts.Store
	so.Replicator = replicator{l}
	if so.MaxBatchRecords <= 0 || so.MaxBatchRecords > maxBatch-1 {
		so.MaxBatchRecords = maxBatch - 1
	}
	if l.Store, err = eventstore.Open(so); err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	l.stopFollow, l.followDone = cancel, make(chan struct{})
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{opts.Subjects + ".*"}})
	if err != nil {
		cancel()
		_ = l.Store.Close()
		return nil, fmt.Errorf("jetstream: follow stream %s: %w", opts.Stream, err)
	}
	go l.follow(fctx, cons)
	return l, nil
}

func (l *Log) subject(chain string) string { return l.opts.Subjects + "." + chain }

func (l *Log) state(chain string) *chainState {
	st, ok := l.chains[chain]
	if !ok {
		st = &chainState{}
		l.chains[chain] = st
	}
	return st
}

// Enqueue sequences drafts on this node. When the node knows the stream
// holds records of chain it has not applied yet, it first waits for its
// follower to apply them, at most AckTimeout or until ctx ends, and returns
// ErrNotSequencer if it is still behind then; otherwise the Pending fails
// with ErrNotSequencer if another node appends first.
//
// Once a Sequencer runs on the Log, Enqueue also refuses (ErrNotSequencer)
// every chain this node does not hold the sequencing lease of.
func (l *Log) Enqueue(ctx context.Context, chain string, drafts ...eventstore.Draft) (*eventstore.Pending, error) {
	s := l.gate.Load()
	if s != nil && !s.Sequencing(chain) {
		return nil, notSequencing(chain)
	}
	if err := l.catchUp(ctx, chain); err != nil {
		return nil, err
	}
	if s != nil {
		l.gateMu.RLock()
		defer l.gateMu.RUnlock()
		if !s.Sequencing(chain) {
			return nil, notSequencing(chain)
		}
	}
	return l.Store.Enqueue(ctx, chain, drafts...)
}

func notSequencing(chain string) error {
	return fmt.Errorf("%w: chain %s: this node does not sequence it (another node holds the lease, or this one is catching up)", ErrNotSequencer, chain)
}

// Append is Enqueue followed by Pending.Wait.
func (l *Log) Append(ctx context.Context, chain string, drafts ...eventstore.Draft) ([]eventstore.Record, error) {
	p, err := l.Enqueue(ctx, chain, drafts...)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// catchUp waits until the node has applied every commit of chain it has
// seen in the stream (see Enqueue).
func (l *Log) catchUp(ctx context.Context, chain string) error {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		st := l.chains[chain]
		if st == nil || st.tail <= st.seq {
			l.mu.Unlock()
			return nil
		}
		tail, seq, wake := st.tail, st.seq, l.applied
		l.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(l.opts.AckTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("%w: chain %s: the stream holds %d records, this node applied %d", ErrNotSequencer, chain, tail, seq)
		}
	}
}

// Applied returns how far this node applied chain (its local durable head)
// and the highest seq it has seen in the stream; their difference is its lag.
func (l *Log) Applied(chain string) (applied, seen uint64, err error) {
	head, err := l.Store.Head(chain)
	if err != nil {
		return 0, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seen = head.Seq
	if st := l.chains[chain]; st != nil && st.tail > seen {
		seen = st.tail
	}
	return head.Seq, seen, nil
}

// WaitApplied waits until this node applied chain through seq (its local
// durable head reached seq), until ctx ends (its error is returned), or
// until the follower stopped (Failed's error).
func (l *Log) WaitApplied(ctx context.Context, chain string, seq uint64) error {
	for {
		l.mu.Lock()
		wake, ferr := l.applied, l.followErr
		l.mu.Unlock()
		head, err := l.Store.Head(chain)
		if err != nil {
			return err
		}
		if head.Seq >= seq {
			return nil
		}
		if ferr != nil {
			return ferr
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("jetstream: chain %s: applied %d, waited for %d: %w", chain, head.Seq, seq, ctx.Err())
		}
	}
}

// StreamSeq returns the chain seq of chain's last commit in the stream
// (0 for a chain the stream does not hold), read from the stream itself,
// not from what this node has applied.
func (l *Log) StreamSeq(ctx context.Context, chain string) (uint64, error) {
	m, err := l.stream.GetLastMsgForSubject(ctx, l.subject(chain))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: last message of %s: %w", chain, err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("jetstream: last message of %s: bad %s header: %w", chain, HeaderSeq, err)
	}
	return seq, nil
}

// Failed returns why the Log refuses appends: the local store's failure,
// or the follower's if it stopped on a record it could not apply.
func (l *Log) Failed() error {
	if err := l.Store.Failed(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.followErr
}

// Close commits what is queued (publishing it), stops following and closes
// the local store. Safe to call twice; it does not close Conn.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		err := l.Store.Close()
		l.stopFollow()
		<-l.followDone
		l.closeErr = err
	})
	return l.closeErr
}

// replicator publishes group commits for the local store.
type replicator struct{ l *Log }

// pubAck is nats-server's answer to a batch's commit message.
type pubAck struct {
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	BatchID  string `json:"batch"`
	Count    uint64 `json:"count"`
	Error    *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// nats-server's error codes for a failed expected-last-sequence check
// (JSStreamWrongLastSequenceErrF, JSStreamWrongLastSequenceConstantErr).
const (
	errWrongLastSequence         = 10071
	errWrongLastSequenceConstant = 10164
)

// Replicate publishes one atomic batch (see the package doc). Any error
// closes the chain to appends until the Sequencer (if one runs) has caught
// up: the batch's callers fail, and what they folded into their view of
// the chain may or may not be in the stream.
func (r replicator) Replicate(ctx context.Context, chain string, first uint64, stored [][]byte, note []byte) error {
	err := r.replicate(ctx, chain, first, stored, note)
	if err != nil {
		r.l.fenced(chain)
	}
	return err
}

func (r replicator) replicate(ctx context.Context, chain string, first uint64, stored [][]byte, note []byte) error {
	l := r.l
	expected, err := l.expectedLast(ctx, chain, first)
	if err != nil {
		return err
	}
	last := first + uint64(len(stored)) - 1
	rctx, cancel := context.WithTimeout(ctx, l.opts.AckTimeout)
	defer cancel()
	var id string
	var resp *nats.Msg
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		id = nuid.Next()
		resp, err = l.publishBatch(rctx, chain, id, expected, first, stored, note)
		if !errors.Is(err, nats.ErrNoResponders) {
			break
		}
		// No server took the commit message: the stream's subject has
		// no interest yet where Conn is connected (a stream just
		// created, a leader being elected). Nothing was committed;
		// whatever records of the batch reached a server are dropped
		// with the uncommitted batch, so a new batch is safe.
		select {
		case <-rctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("jetstream: commit %s through %d: bad acknowledgement %q: %w", chain, last, resp.Data, err)
	}
	if ack.Error != nil {
		if c := ack.Error.ErrCode; c == errWrongLastSequence || c == errWrongLastSequenceConstant {
			return fmt.Errorf("%w: chain %s: batch %d-%d refused, another node appended first (%s)", ErrNotSequencer, chain, first, last, ack.Error.Description)
		}
		return fmt.Errorf("jetstream: commit %s through %d refused: %s (%d)", chain, last, ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.BatchID != id || ack.Count != uint64(len(stored)+1) {
		return fmt.Errorf("jetstream: commit %s through %d: acknowledged batch %q of %d, sent %q of %d", chain, last, ack.BatchID, ack.Count, id, len(stored)+1)
	}
	l.mu.Lock()
	st := l.state(chain)
	if ack.Sequence > st.streamSeq {
		st.seq, st.streamSeq = last, ack.Sequence
	}
	st.tail = max(st.tail, last)
	l.mu.Unlock()
	return nil
}

// publishBatch sends stored as batch id, expected to follow stream
// sequence expected, and returns the server's answer to its commit
// message. An error from the commit request leaves the outcome unknown
// unless it is nats.ErrNoResponders.
func (l *Log) publishBatch(ctx context.Context, chain, id string, expected, first uint64, stored [][]byte, note []byte) (*nats.Msg, error) {
	last := first + uint64(len(stored)) - 1
	subject := l.subject(chain)
	msg := func(i int, kind string, seq uint64, data []byte) *nats.Msg {
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(HeaderKind, kind)
		m.Header.Set(HeaderSeq, strconv.FormatUint(seq, 10))
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == 0 {
			m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(expected, 10))
		}
		return m
	}
	for i, b := range stored {
		if err := l.opts.Conn.PublishMsg(msg(i, KindRecord, first+uint64(i), b)); err != nil {
			return nil, fmt.Errorf("jetstream: publish %s record %d: %w", chain, first+uint64(i), err)
		}
	}
	commit := msg(len(stored), KindCommit, last, note)
	commit.Header.Set("Nats-Batch-Commit", "1")
	commit.Header.Set(HeaderWriter, l.writer)
	resp, err := l.opts.Conn.RequestMsgWithContext(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("jetstream: commit %s through %d (outcome unknown): %w", chain, last, err)
	}
	return resp, nil
}

// fenced tells the Sequencer, if one runs, that chain's writer was
// refused: it closes the chain until it has caught up again.
func (l *Log) fenced(chain string) {
	if s := l.gate.Load(); s != nil {
		s.fenced(chain)
	}
}

// foreign closes chain (if a Sequencer has it open) before records
// another writer sequenced are ingested into it: the caller's view of the
// chain (the Ledger) must fold them in before it decides anything more.
func (l *Log) foreign(chain string) {
	s := l.gate.Load()
	if s == nil {
		return
	}
	l.gateMu.Lock()
	s.foreign(chain)
	l.gateMu.Unlock()
}

// expectedLast returns the stream sequence of chain's last commit message,
// which this node must have applied: it sequences record first only if
// the stream holds exactly first-1 records of the chain.
func (l *Log) expectedLast(ctx context.Context, chain string, first uint64) (uint64, error) {
	l.mu.Lock()
	st := l.state(chain)
	known, seq, streamSeq, tail := st.known || st.streamSeq > 0, st.seq, st.streamSeq, st.tail
	l.mu.Unlock()
	if !known {
		m, err := l.stream.GetLastMsgForSubject(ctx, l.subject(chain))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			seq, streamSeq = 0, 0
		case err != nil:
			return 0, fmt.Errorf("jetstream: last message of %s: %w", chain, err)
		default:
			if seq, err = strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64); err != nil {
				return 0, fmt.Errorf("jetstream: last message of %s: bad %s header: %w", chain, HeaderSeq, err)
			}
			streamSeq = m.Sequence
		}
		l.mu.Lock()
		if !st.known && st.streamSeq <= streamSeq {
			st.seq, st.streamSeq, st.known = seq, streamSeq, true
			st.tail = max(st.tail, seq)
		}
		seq, streamSeq, tail = st.seq, st.streamSeq, st.tail
		l.mu.Unlock()
	}
	if seq != first-1 || tail > seq {
		return 0, fmt.Errorf("%w: chain %s: the stream holds %d records, this node sequenced from %d", ErrNotSequencer, chain, max(seq, tail), first)
	}
	return streamSeq, nil
}

// MonitorSyncCheck returns a SyncChecked that reads each server's
// monitoring endpoint (http://host:8222, one per server of the cluster)
// and requires jetstream.config.sync_always in its /varz.
func MonitorSyncCheck(client *http.Client, monitors ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		if len(monitors) == 0 {
			return fmt.Errorf("%w: no monitoring endpoint to check", ErrNotSyncAlways)
		}
		for _, base := range monitors {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/varz", nil)
			if err != nil {
				return fmt.Errorf("jetstream: check sync at %s: %w", base, err)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("jetstream: check sync at %s: %w", base, err)
			}
			var varz struct {
				JetStream struct {
					Config struct {
						SyncAlways bool `json:"sync_always"`
					} `json:"config"`
				} `json:"jetstream"`
			}
			err = json.NewDecoder(resp.Body).Decode(&varz)
			_ = resp.Body.Close()
			if err != nil {
				return fmt.Errorf("jetstream: check sync at %s: %w", base, err)
			}
			if !varz.JetStream.Config.SyncAlways {
				return fmt.Errorf("%w: %s/varz reports sync_always false", ErrNotSyncAlways, base)
			}
		}
		return nil
	}
}
