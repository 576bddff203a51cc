package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sequencing
//
// One node sequences a chain at a time: the holder of the chain's lease, a
// key (the chain's name) in a JetStream key-value bucket whose entries
// expire TTL after their last write. The holder renews it every TTL/3 with
// a compare-and-set on its revision; a node that finds the key missing
// creates it (a create fails if the key exists), so at most one node holds
// a live lease. The lease's value names the holder and its advertised URL,
// where the other nodes forward writes.
//
// The lease is for liveness, not safety: a holder that stalls past its TTL
// may still believe it holds the lease while another node takes over. The
// stream's compare-and-set on Nats-Expected-Last-Subject-Sequence is what
// makes two sequencers harmless: the later batch is refused whole, the
// Log calls fenced, and the Sequencer closes the chain until it has
// applied the stream again (and, if it lost the lease, for good).

// LeaseOptions configure a Sequencer.
type LeaseOptions struct {
	// Node names this node, unique in the cluster. Required.
	Node string
	// URL is where the other nodes reach this node's HTTP API, kept in the
	// lease for forwarding. Required.
	URL string
	// Bucket names the key-value bucket of leases. Default
	// "CUSTOS_SEQUENCERS".
	Bucket string
	// TTL is how long a lease lives without renewal: how long the cluster
	// waits for a sequencer that died. Default 3s.
	TTL time.Duration
	// Replicas of the bucket when it is created. Default the Log's Replicas.
	Replicas int
	// Prepare, if set, is called once this node holds chain's lease and
	// has applied every record the stream holds of it, before its appends
	// open (the Ledger folds in what it has not seen). An error gives the
	// lease up. fencedSince reports whether a batch of chain was refused
	// since the last Prepare: the caller's view of the chain may hold
	// records that never became durable.
	Prepare func(ctx context.Context, chain string, fencedSince bool) error
	// NodesBucket names the key-value bucket where each node reports how
	// far it has applied each chain (see Nodes). Default "CUSTOS_NODES".
	NodesBucket string
	// Anchor, if set, names the chain whose lease decides this node's
	// other leases: the node contends for any other chain only while it
	// holds Anchor's, and gives the others up when it loses it. So one node
	// sequences every chain, and a change that spans chains (one action
	// recorded on two chains) is made on one node. Register Anchor too.
	Anchor string
	// Logger. Default the Log's.
	Logger *slog.Logger
}

// NodeReport is what a node last reported of itself (see Nodes).
type NodeReport struct {
	Node string    `json:"node"`
	URL  string    `json:"url"`
	At   time.Time `json:"at"`
	// Applied is, per chain, the seq of the node's local durable head.
	Applied map[string]uint64 `json:"applied"`
}

// Holder is the value of a lease: the node that sequences a chain.
type Holder struct {
	Node  string    `json:"node"`
	URL   string    `json:"url"`
	Since time.Time `json:"since"`
}

// Sequencer contends for the leases of the chains registered with it and
// opens the Log's appends to a chain only while it holds the chain's lease
// (see "Sequencing" above). Safe for concurrent use; Close it before
// closing the Log.
type Sequencer struct {
	log   *Log
	kv    jetstream.KeyValue
	nodes jetstream.KeyValue
	o     LeaseOptions

	mu     sync.Mutex
	chains map[string]*lease

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// lease is the Sequencer's view of one chain.
type lease struct {
	// wake is signalled (non-blocking) to make the chain's loop act now.
	wake chan struct{}
	// The fields below are guarded by Sequencer.mu.
	held    bool      // this node holds the lease
	open    bool      // appends are open: held, caught up and prepared
	rev     uint64    // the lease's revision this node wrote last
	renewed time.Time // when this node last wrote it
	fenced  bool      // a batch was refused since the last Prepare
	holder  Holder    // the holder last seen (this node's own when held)
	known   bool      // holder is set
	// foreign counts the commits of other writers the follower is about
	// to ingest: a Prepare that saw it change opens nothing, as its
	// caller's view may miss them.
	foreign uint64
}

// StartSequencer creates the lease bucket if it is missing and starts
// contending for the chains given to Register. Appends through the Log are
// refused from now on for every chain this node does not sequence. It may
// run once per Log.
func (l *Log) StartSequencer(ctx context.Context, o LeaseOptions) (*Sequencer, error) {
	if o.Node == "" || o.URL == "" {
		return nil, errors.New("jetstream: a sequencer needs a node name and a URL")
	}
	if !validNode.MatchString(o.Node) {
		return nil, fmt.Errorf("jetstream: node name %q: use letters, digits, '-' and '_' only", o.Node)
	}
	if o.NodesBucket == "" {
		o.NodesBucket = "CUSTOS_NODES"
	}
	if o.Bucket == "" {
		o.Bucket = "CUSTOS_SEQUENCERS"
	}
	if o.TTL <= 0 {
		o.TTL = 3 * time.Second
	}
	if o.Replicas <= 0 {
		o.Replicas = l.opts.Replicas
	}
	if o.Logger == nil {
		o.Logger = l.opts.Logger
	}
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   o.Bucket,
		TTL:      o.TTL,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: lease bucket %s: %w", o.Bucket, err)
	}
	nodes, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   o.NodesBucket,
		TTL:      3 * o.TTL,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: nodes bucket %s: %w", o.NodesBucket, err)
	}
	s := &Sequencer{log: l, kv: kv, nodes: nodes, o: o, chains: map[string]*lease{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if !l.gate.CompareAndSwap(nil, s) {
		s.cancel()
		return nil, errors.New("jetstream: a sequencer runs on this Log already")
	}
	s.wg.Go(s.report)
	return s, nil
}

var validNode = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// report writes this node's NodeReport every TTL/3 until Close.
func (s *Sequencer) report() {
	t := time.NewTicker(s.o.TTL / 3)
	defer t.Stop()
	for {
		r := NodeReport{Node: s.o.Node, URL: s.o.URL, At: time.Now().UTC(), Applied: map[string]uint64{}}
		for _, c := range s.Chains() {
			if h, err := s.log.Store.Head(c); err == nil {
				r.Applied[c] = h.Seq
			}
		}
		value, _ := json.Marshal(r)
		ctx, cancel := context.WithTimeout(s.ctx, s.o.TTL/3)
		if _, err := s.nodes.Put(ctx, s.o.Node, value); err != nil && s.ctx.Err() == nil {
			s.o.Logger.Debug("sequencer: report progress", "err", err)
		}
		cancel()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Nodes returns the reports of the nodes that reported within the last
// 3 TTL, by node name.
func (s *Sequencer) Nodes(ctx context.Context) ([]NodeReport, error) {
	w, err := s.nodes.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("jetstream: read node reports: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []NodeReport
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil { // the initial values are all in
				slices.SortFunc(out, func(a, b NodeReport) int { return strings.Compare(a.Node, b.Node) })
				return out, nil
			}
			var r NodeReport
			if err := json.Unmarshal(e.Value(), &r); err == nil {
				out = append(out, r)
			}
		}
	}
}

// Register makes the Sequencer contend for chain's lease (once; a second
// call does nothing).
func (s *Sequencer) Register(chain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chains[chain]; ok || s.ctx.Err() != nil {
		return
	}
	ls := &lease{wake: make(chan struct{}, 1)}
	s.chains[chain] = ls
	s.wg.Go(func() { s.run(chain, ls) })
}

// Sequencing reports whether this node's appends to chain are open.
func (s *Sequencer) Sequencing(chain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.chains[chain]
	return ls != nil && ls.open
}

// Holder returns the node that sequences chain as last seen, and whether
// one is known (none while the lease is vacant or the bucket unreachable).
// local reports whether it is this node with its appends open.
func (s *Sequencer) Holder(chain string) (h Holder, local, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.chains[chain]
	if ls == nil || !ls.known {
		return Holder{}, false, false
	}
	return ls.holder, ls.open, true
}

// Chains returns the registered chains, sorted.
func (s *Sequencer) Chains() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.chains))
	for c := range s.chains {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Node returns this node's name.
func (s *Sequencer) Node() string { return s.o.Node }

// fenced closes chain after one of its batches was refused: the chain's
// loop catches up and prepares again before reopening it, or steps down
// if the lease is gone. Called by the Log's writer; it does not block.
func (s *Sequencer) fenced(chain string) {
	s.mu.Lock()
	ls := s.chains[chain]
	if ls != nil {
		ls.fenced, ls.open = true, false
	}
	s.mu.Unlock()
	if ls != nil {
		select {
		case ls.wake <- struct{}{}:
		default:
		}
	}
}

// foreign tells of a commit by another writer about to be ingested into
// chain: an open chain closes (as fenced), and a Prepare running now will
// not open it. The Log calls it under its gate lock.
func (s *Sequencer) foreign(chain string) {
	s.mu.Lock()
	ls := s.chains[chain]
	wasOpen := false
	if ls != nil {
		ls.foreign++
		wasOpen = ls.open
		if ls.open {
			ls.fenced, ls.open = true, false
		}
	}
	s.mu.Unlock()
	if wasOpen {
		select {
		case ls.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops contending, closes every chain to appends and gives up the
// leases this node holds, so another node takes over at once rather than
// after the TTL. Call it after the last append was answered (the HTTP
// server drained) and before closing the Log. Safe to call twice.
func (s *Sequencer) Close() {
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.nodes.Delete(ctx, s.o.Node)
	cancel()
	s.mu.Lock()
	var held []string
	revs := map[string]uint64{}
	for c, ls := range s.chains {
		ls.open = false
		if ls.held {
			held = append(held, c)
			revs[c] = ls.rev
			ls.held = false
		}
	}
	s.mu.Unlock()
	for _, c := range held {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.kv.Delete(ctx, c, jetstream.LastRevision(revs[c])); err != nil {
			s.o.Logger.Warn("sequencer: give up lease", "chain", c, "err", err)
		}
		cancel()
	}
}

// tick is how often a chain's loop looks at its lease.
func (s *Sequencer) tick() time.Duration { return max(s.o.TTL/10, 20*time.Millisecond) }

// run is chain's loop: renew the lease while held, take it when vacant.
func (s *Sequencer) run(chain string, ls *lease) {
	t := time.NewTicker(s.tick())
	defer t.Stop()
	for {
		s.step(chain, ls)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-ls.wake:
		}
	}
}

// anchored reports whether this node may hold chain's lease: always
// without an Anchor, else while it holds the Anchor's. The caller holds
// s.mu.
func (s *Sequencer) anchored(chain string) bool {
	if s.o.Anchor == "" || chain == s.o.Anchor {
		return true
	}
	a := s.chains[s.o.Anchor]
	return a != nil && a.held
}

// step is one turn of chain's loop.
func (s *Sequencer) step(chain string, ls *lease) {
	s.mu.Lock()
	held, open, fenced, rev, renewed := ls.held, ls.open, ls.fenced, ls.rev, ls.renewed
	anchored := s.anchored(chain)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, s.o.TTL/3)
	defer cancel()
	if held && !anchored {
		s.release(ctx, chain, ls)
		return
	}
	if held {
		if time.Since(renewed) >= s.o.TTL/3 || !open {
			if !s.renew(ctx, chain, ls, rev, renewed) {
				return
			}
		}
		if !open || fenced {
			s.prepare(chain, ls)
		}
		return
	}
	e, err := s.kv.Get(ctx, chain)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		s.mu.Lock()
		ls.known = false
		s.mu.Unlock()
		if anchored {
			s.take(ctx, chain, ls)
		}
	case err != nil:
		if s.ctx.Err() == nil {
			s.o.Logger.Debug("sequencer: read lease", "chain", chain, "err", err)
		}
	default:
		var h Holder
		if err := json.Unmarshal(e.Value(), &h); err != nil {
			s.o.Logger.Warn("sequencer: lease of another format", "chain", chain, "err", err)
			return
		}
		s.mu.Lock()
		ls.holder, ls.known = h, true
		s.mu.Unlock()
		if h.Node == s.o.Node && anchored {
			// This node's lease from before a restart: take it back
			// without waiting for it to expire.
			s.claim(ctx, chain, ls, e.Revision())
		}
	}
}

// renew rewrites the held lease; it reports whether the lease is still
// held. A lease another node wrote, or one not renewed within 2/3 of its
// TTL, is given up (the appends close).
func (s *Sequencer) renew(ctx context.Context, chain string, ls *lease, rev uint64, renewed time.Time) bool {
	s.mu.Lock()
	h := ls.holder
	s.mu.Unlock()
	value, _ := json.Marshal(h)
	next, err := s.kv.Update(ctx, chain, value, rev)
	if err == nil {
		s.mu.Lock()
		ls.rev, ls.renewed = next, time.Now()
		s.mu.Unlock()
		return true
	}
	lost := errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
	if !lost && time.Since(renewed) < s.o.TTL*2/3 {
		s.o.Logger.Warn("sequencer: renew lease (retrying)", "chain", chain, "err", err)
		return true
	}
	s.o.Logger.Warn("sequencer: lost the lease; stepping down", "chain", chain, "err", err)
	s.mu.Lock()
	ls.held, ls.open, ls.known = false, false, false
	s.mu.Unlock()
	if chain == s.o.Anchor {
		s.wakeAll() // the other chains are given up now
	}
	return false
}

// release gives up chain's lease because this node no longer holds the
// Anchor's: its appends close now, and another node may take it at once.
func (s *Sequencer) release(ctx context.Context, chain string, ls *lease) {
	s.mu.Lock()
	rev := ls.rev
	ls.held, ls.open, ls.known = false, false, false
	s.mu.Unlock()
	s.o.Logger.Warn("sequencer: gave up the lease: this node no longer sequences the anchor chain", "chain", chain, "anchor", s.o.Anchor, "node", s.o.Node)
	if err := s.kv.Delete(ctx, chain, jetstream.LastRevision(rev)); err != nil && s.ctx.Err() == nil {
		s.o.Logger.Debug("sequencer: give up lease", "chain", chain, "err", err)
	}
}

// take creates the vacant lease of chain.
func (s *Sequencer) take(ctx context.Context, chain string, ls *lease) {
	h := Holder{Node: s.o.Node, URL: s.o.URL, Since: time.Now().UTC()}
	value, _ := json.Marshal(h)
	rev, err := s.kv.Create(ctx, chain, value)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && s.ctx.Err() == nil {
			s.o.Logger.Debug("sequencer: take lease", "chain", chain, "err", err)
		}
		return
	}
	s.took(chain, ls, h, rev)
}

// claim takes back this node's own lease at revision rev.
func (s *Sequencer) claim(ctx context.Context, chain string, ls *lease, rev uint64) {
	h := Holder{Node: s.o.Node, URL: s.o.URL, Since: time.Now().UTC()}
	value, _ := json.Marshal(h)
	next, err := s.kv.Update(ctx, chain, value, rev)
	if err != nil {
		return
	}
	s.took(chain, ls, h, next)
}

// took records that this node took chain's lease, then prepares it.
func (s *Sequencer) took(chain string, ls *lease, h Holder, rev uint64) {
	s.mu.Lock()
	ls.held, ls.open, ls.rev, ls.renewed = true, false, rev, time.Now()
	ls.holder, ls.known = h, true
	s.mu.Unlock()
	s.o.Logger.Info("sequencer: took the lease", "chain", chain, "node", s.o.Node)
	s.prepare(chain, ls)
	if chain == s.o.Anchor {
		s.wakeAll() // the other chains may be taken now
	}
}

// wakeAll makes every chain's loop act now.
func (s *Sequencer) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ls := range s.chains {
		select {
		case ls.wake <- struct{}{}:
		default:
		}
	}
}

// prepare catches chain up with the stream, calls Prepare and opens the
// appends; on failure it gives the lease up so another node may take it.
func (s *Sequencer) prepare(chain string, ls *lease) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.TTL/2)
	defer cancel()
	s.mu.Lock()
	seen := ls.foreign
	s.mu.Unlock()
	err := s.catchUp(ctx, chain)
	s.mu.Lock()
	fenced := ls.fenced
	ls.fenced = false
	s.mu.Unlock()
	if err == nil && s.o.Prepare != nil {
		err = s.o.Prepare(ctx, chain, fenced)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ls.held {
		return
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.o.Logger.Warn("sequencer: could not prepare; giving up the lease", "chain", chain, "err", err)
		}
		ls.fenced = ls.fenced || fenced
		ls.held, ls.open, ls.known = false, false, false
		rev := ls.rev
		s.wg.Go(func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.kv.Delete(dctx, chain, jetstream.LastRevision(rev))
			if chain == s.o.Anchor {
				s.wakeAll()
			}
		})
		return
	}
	if ls.fenced || ls.foreign != seen {
		// Refused again, or another writer's records came in while
		// preparing: the next step prepares again.
		ls.fenced = ls.fenced || fenced
		return
	}
	ls.open = true
	s.o.Logger.Info("sequencer: sequencing", "chain", chain, "node", s.o.Node)
}

// catchUp waits until the Log applied every record the stream holds of
// chain.
func (s *Sequencer) catchUp(ctx context.Context, chain string) error {
	seq, err := s.log.StreamSeq(ctx, chain)
	if err != nil {
		return err
	}
	return s.log.WaitApplied(ctx, chain, seq)
}
