package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

// Defaults of Config.
const (
	// DefaultCheckEvery is how often the engine looks for new records,
	// expiring keys and a failed store when nothing wakes it sooner.
	DefaultCheckEvery = time.Second
	// DefaultVerifyEvery is how often the whole chain is verified.
	DefaultVerifyEvery = 24 * time.Hour
	// DefaultMaxGroups bounds the groups (roles, agents, sources, key
	// prefixes, addresses) counted per rule.
	DefaultMaxGroups = 10000
	// NoFullVerify as Config.VerifyEvery turns the scheduled full pass off
	// (each new record is still verified once).
	NoFullVerify time.Duration = -1
)

// Rule ids of the alerts raised without a stored rule of their kind.
const (
	BuiltinVerifyRule = "builtin.verify_failed"
	BuiltinStoreRule  = "builtin.store_failed"
)

// Alert is an alert as delivered and listed: the alert.raised payload and
// where it sits on the chain (Seq 0 and no EventID for a store failure,
// which could not be recorded).
type Alert struct {
	Seq     uint64 `json:"seq,omitempty"`
	EventID string `json:"event_id,omitempty"`
	alerts.Raised
}

// Config configures an Engine. Ledger and Log are required.
type Config struct {
	// Ledger records alerts and holds the rules and keys. Required.
	Ledger *writeside.Ledger
	// Log is the store the Ledger writes to, read to follow and verify the
	// chain. Required.
	Log eventstore.Log
	// Chain is the chain watched. Default eventstore.DefaultChain.
	Chain string
	// Clock judges windows and key expiry. Default Ledger.Now, so the
	// engine agrees with the record times.
	Clock func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// CheckEvery is the poll interval (see DefaultCheckEvery). Notify
	// wakes the engine sooner.
	CheckEvery time.Duration
	// VerifyEvery is the interval of full passes over the chain, the first
	// at Run. Default DefaultVerifyEvery; NoFullVerify disables them.
	VerifyEvery time.Duration
	// Deliver, if set, is given every alert raised, on the engine's
	// goroutine: it must not block (the webhook sender queues).
	Deliver func(Alert)
	// OnVerify, if set, is told each verify result: whether the chain
	// checked so far is valid, and the last seq verified.
	OnVerify func(valid bool, lastSeq uint64)
	// MaxGroups bounds the groups counted per rule. Default
	// DefaultMaxGroups; groups beyond it are not counted (logged once).
	MaxGroups int
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Ledger == nil {
		errs = append(errs, errors.New("alerting: Config.Ledger is required"))
	}
	if c.Log == nil {
		errs = append(errs, errors.New("alerting: Config.Log is required"))
	}
	if c.CheckEvery < 0 {
		errs = append(errs, errors.New("alerting: Config.CheckEvery must not be negative"))
	}
	if c.VerifyEvery < 0 && c.VerifyEvery != NoFullVerify {
		errs = append(errs, errors.New("alerting: Config.VerifyEvery must be positive, 0 (default) or NoFullVerify"))
	}
	if c.Chain != "" {
		if err := eventstore.ValidateChain(c.Chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Chain == "" {
		c.Chain = eventstore.DefaultChain
	}
	if c.Clock == nil {
		c.Clock = c.Ledger.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = DefaultCheckEvery
	}
	if c.VerifyEvery == 0 {
		c.VerifyEvery = DefaultVerifyEvery
	}
	if c.MaxGroups <= 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	return c
}

// Engine raises alerts for one chain. Run it once; Notify and InvalidKey
// are safe for concurrent use, also before Run and after it returned.
type Engine struct {
	cfg     Config
	wake    chan struct{}
	crossed chan alerts.Raised // crossings found by InvalidKey

	mu           sync.Mutex // guards the invalid-key counters
	invalidRules []alerts.Rule
	invalid      map[string]*window // rule id \x00 group -> window
	groupsFull   map[string]bool    // rules whose group cap was logged

	// Owned by the Run goroutine.
	cursor      uint64
	prev        eventstore.Hash
	broken      bool                   // incremental verify found a problem: stop checking
	spikeRules  map[string]alerts.Rule // denial_spike and denial_rate rules
	spikes      map[string]*window     // denial_spike: rule id \x00 group -> DENYs
	rates       map[string]*rateWindow // denial_rate: rule id \x00 group -> decisions and DENYs
	storeRaised bool

	statusMu sync.Mutex
	valid    bool
	verified uint64
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{
		cfg:        cfg.withDefaults(),
		wake:       make(chan struct{}, 1),
		crossed:    make(chan alerts.Raised, 64),
		invalid:    map[string]*window{},
		groupsFull: map[string]bool{},
		spikes:     map[string]*window{},
		rates:      map[string]*rateWindow{},
		valid:      true,
	}, nil
}

// Notify wakes Run to look at new records; it never blocks. Wire it to the
// durable heads the store publishes.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Status returns whether every verify so far held and the last seq the
// incremental verify checked.
func (e *Engine) Status() (valid bool, lastSeq uint64) {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	return e.valid, e.verified
}

func (e *Engine) reportVerify(valid bool, seq uint64) {
	e.statusMu.Lock()
	e.valid = e.valid && valid
	if valid && seq > e.verified {
		e.verified = seq
	}
	v, s := e.valid, e.verified
	e.statusMu.Unlock()
	if e.cfg.OnVerify != nil {
		e.cfg.OnVerify(v, s)
	}
}

// Run follows the chain until ctx ends: from the durable head at the call,
// each new record is verified once and counted; every CheckEvery it looks
// for expiring keys and a failed store; every VerifyEvery (first at once) a
// second goroutine verifies the whole chain. It returns nil when ctx ends,
// after both goroutines stopped, or the error of reading the first head.
func (e *Engine) Run(ctx context.Context) error {
	head, err := e.cfg.Log.Head(e.cfg.Chain)
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	e.cursor, e.prev = head.Seq, head.Hash
	var wg sync.WaitGroup
	if e.cfg.VerifyEvery > 0 {
		wg.Go(func() { e.fullPasses(ctx) })
	}
	defer wg.Wait()
	tick := time.NewTicker(e.cfg.CheckEvery)
	defer tick.Stop()
	var lastCheck time.Time
	for {
		if now := time.Now(); now.Sub(lastCheck) >= e.cfg.CheckEvery {
			lastCheck = now
			e.refreshInvalidRules()
			e.rearm(e.cfg.Clock())
			e.checkKeys(ctx)
			e.checkStore()
		}
		e.follow(ctx)
		followed := time.Now()
		select {
		case <-ctx.Done():
			return nil
		case a := <-e.crossed:
			e.raise(ctx, a)
		case <-tick.C:
		case <-e.wake:
			// Fold the wake-ups of many commits into one read.
			if d := followEvery - time.Since(followed); d > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
			}
		}
	}
}

// followEvery is the least time between two reads of new records when
// commits wake the engine.
const followEvery = 20 * time.Millisecond

// fullPasses verifies the whole chain now and every VerifyEvery.
func (e *Engine) fullPasses(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.fullPass(ctx)
		t.Reset(e.cfg.VerifyEvery)
	}
}

// fullPass verifies chain from genesis up to its durable head.
func (e *Engine) fullPass(ctx context.Context) {
	head, err := e.cfg.Log.Head(e.cfg.Chain)
	if err != nil {
		return // closed or closing
	}
	c := verify.NewChecker(e.cfg.Chain, 1, eventstore.GenesisPrevHash())
	err = e.cfg.Log.Scan(ctx, e.cfg.Chain, 1, head.Seq, func(seq uint64, stored []byte) error {
		c.Add(seq, stored)
		return nil
	})
	if e.readFailed(ctx, err, "full verify") {
		return
	}
	r := c.Finish(head, true)
	e.reportVerify(r.Valid, 0)
	if !r.Valid {
		e.verifyFailed(ctx, r, "full")
	}
}

// readFailed reports whether err stops a verify, raising an alert for a
// read error that is not the store closing.
func (e *Engine) readFailed(ctx context.Context, err error, what string) bool {
	switch {
	case err == nil:
		return false
	case ctx.Err() != nil, errors.Is(err, eventstore.ErrClosed):
		return true
	}
	e.cfg.Logger.Error("alerting: reading the chain failed", "what", what, "err", err)
	e.reportVerify(false, 0)
	e.raise(ctx, alerts.Raised{
		RuleID: e.ruleFor(alerts.KindVerifyFailed, BuiltinVerifyRule), Kind: alerts.KindVerifyFailed,
		Subject: "chain:" + e.cfg.Chain, DedupeKey: "verify_failed/" + e.cfg.Chain + "/read",
		Detail: "The chain could not be read during " + what + ": " + err.Error(),
	})
	return true
}

// follow checks and counts every durable record after the cursor.
func (e *Engine) follow(ctx context.Context) {
	head, err := e.cfg.Log.Head(e.cfg.Chain)
	if err != nil || head.Seq <= e.cursor {
		return
	}
	e.refreshSpikeRules()
	c := verify.NewChecker(e.cfg.Chain, e.cursor+1, e.prev)
	err = e.cfg.Log.Scan(ctx, e.cfg.Chain, e.cursor+1, head.Seq, func(seq uint64, stored []byte) error {
		if !e.broken {
			c.Add(seq, stored)
		}
		if len(e.spikeRules) == 0 {
			return nil
		}
		v, err := eventstore.ParseStored(stored)
		if err != nil || string(v.Type) != decision.TypeMade {
			return nil
		}
		e.countDecision(ctx, v)
		return nil
	})
	if e.readFailed(ctx, err, "incremental verify") {
		return
	}
	from := e.cursor + 1
	e.cursor, e.prev = head.Seq, head.Hash
	if e.broken {
		return
	}
	r := c.Finish(head, true)
	e.reportVerify(r.Valid, head.Seq)
	if !r.Valid {
		e.broken = true
		e.verifyFailed(ctx, r, "incremental, seqs "+strconv.FormatUint(from, 10)+"-"+strconv.FormatUint(head.Seq, 10))
	}
}

// verifyFailed raises the verify alert for report r, once per chain and
// broken seq.
func (e *Engine) verifyFailed(ctx context.Context, r verify.Report, how string) {
	seq, kind, msg := uint64(0), "", ""
	if r.Detail != nil {
		seq, kind, msg = r.Detail.Seq, r.Detail.Kind, r.Detail.Message
	}
	e.raise(ctx, alerts.Raised{
		RuleID: e.ruleFor(alerts.KindVerifyFailed, BuiltinVerifyRule), Kind: alerts.KindVerifyFailed,
		Subject:   "chain:" + e.cfg.Chain,
		DedupeKey: "verify_failed/" + e.cfg.Chain + "/" + strconv.FormatUint(seq, 10) + "/" + kind,
		Figures:   map[string]int64{"broken_seq": int64(seq), "head_seq": int64(r.HeadSeq), "chained": int64(r.Chained)},
		Detail:    fmt.Sprintf("Chain %s failed verify (%s) at seq %d: %s (%s).", e.cfg.Chain, how, seq, kind, msg),
	})
}

// ruleFor returns the id of the first rule of kind, or builtin.
func (e *Engine) ruleFor(kind, builtin string) string {
	for _, r := range e.cfg.Ledger.AlertRules() {
		if r.Kind == kind {
			return r.RuleID
		}
	}
	return builtin
}

// checkStore delivers one store_failed alert once the log has failed. It
// cannot be recorded: the log refuses appends.
func (e *Engine) checkStore() {
	err := e.cfg.Log.Failed()
	if err == nil || e.storeRaised {
		return
	}
	e.storeRaised = true
	now := e.cfg.Clock().UTC()
	a := Alert{Raised: alerts.Raised{
		AlertID: "alr_store_" + strconv.FormatInt(now.UnixNano(), 36),
		RuleID:  e.ruleFor(alerts.KindStoreFailed, BuiltinStoreRule), Kind: alerts.KindStoreFailed,
		Subject: "chain:" + e.cfg.Chain, RaisedAt: now,
		Detail: "The log failed closed: every write is refused and evaluate answers 503 until a restart. The server log has the cause.",
	}}
	e.cfg.Logger.Error("alert raised", "rule_id", a.RuleID, "kind", a.Kind, "subject", a.Subject)
	if e.cfg.Deliver != nil {
		e.cfg.Deliver(a)
	}
}

// raise records a and delivers it. A once-only alert already on the chain
// is neither recorded nor delivered again.
func (e *Engine) raise(ctx context.Context, a alerts.Raised) {
	raised, rec, ok, err := e.cfg.Ledger.RaiseAlert(context.WithoutCancel(ctx), a)
	if errors.Is(err, eventstore.ErrFenced) {
		// A node of a cluster that does not sequence the chain: the
		// sequencer's engine sees the same log and raises the alert.
		e.cfg.Logger.Debug("alerting: alert left to the chain's sequencer", "rule_id", a.RuleID, "kind", a.Kind, "subject", a.Subject)
		return
	}
	if err != nil {
		e.cfg.Logger.Error("alerting: could not record alert", "rule_id", a.RuleID, "kind", a.Kind, "subject", a.Subject, "err", err)
		return
	}
	if !ok {
		return
	}
	e.cfg.Logger.Warn("alert raised", "rule_id", raised.RuleID, "kind", raised.Kind, "subject", raised.Subject, "seq", rec.Seq)
	if e.cfg.Deliver != nil {
		e.cfg.Deliver(Alert{Seq: rec.Seq, EventID: rec.ID, Raised: raised})
	}
}

// checkKeys raises key_expiring alerts: for every active key not revoked
// (a rotated key's end is already planned) and every day count d of every
// key_expiring rule, once the key expires within d days.
func (e *Engine) checkKeys(ctx context.Context) {
	var rules []alerts.Rule
	for _, r := range e.cfg.Ledger.AlertRules() {
		if r.Kind == alerts.KindKeyExpiring {
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return
	}
	now := e.cfg.Clock()
	for _, k := range e.cfg.Ledger.Keys() {
		if k.RevokedAt != nil || !k.IsActive(now) {
			continue
		}
		left := k.ExpiresAt.Sub(now)
		for _, r := range rules {
			for _, d := range r.Days {
				if left > time.Duration(d)*24*time.Hour {
					continue
				}
				dedupe := "key_expiring/" + r.RuleID + "/" + k.KeyID + "/" + strconv.Itoa(d)
				if e.cfg.Ledger.AlertRaised(dedupe) {
					continue
				}
				exp := k.ExpiresAt.UTC()
				e.raise(ctx, alerts.Raised{
					RuleID: r.RuleID, Kind: alerts.KindKeyExpiring, Subject: "key:" + k.KeyID, DedupeKey: dedupe,
					WindowEnd: &exp,
					Figures:   map[string]int64{"days": int64(d), "seconds_left": int64(left / time.Second)},
					Detail: fmt.Sprintf("Key %s (%s, scope %s) expires within %d days, at %s. Rotate it before then.",
						k.KeyID, k.Name, k.Scope, d, exp.Format(time.RFC3339)),
				})
			}
		}
	}
}

// refreshSpikeRules takes the denial_spike and denial_rate rules in force,
// dropping the counts of rules that changed or went.
func (e *Engine) refreshSpikeRules() {
	rules := map[string]alerts.Rule{}
	for _, r := range e.cfg.Ledger.AlertRules() {
		if r.Kind == alerts.KindDenialSpike || r.Kind == alerts.KindDenialRate {
			rules[r.RuleID] = r
		}
	}
	for id, old := range e.spikeRules {
		if r, ok := rules[id]; !ok || !r.Equal(old) {
			dropRule(e.spikes, id)
			dropRule(e.rates, id)
		}
	}
	e.spikeRules = rules
}

// dropRule deletes the windows of rule id from m (keyed rule id \x00 group).
func dropRule[W any](m map[string]W, id string) {
	prefix := id + "\x00"
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			delete(m, k)
		}
	}
}

// decisionGroup returns the group of made under rule r ("" for none).
func decisionGroup(r alerts.Rule, made decision.Made) string {
	switch r.GroupBy {
	case alerts.GroupRole:
		if made.EvaluatedRole != "" {
			return made.EvaluatedRole
		}
		return made.Request.AgentRole
	case alerts.GroupAgent:
		return made.Request.AgentID
	case alerts.GroupSource:
		return made.Request.SourceID
	case alerts.GroupDenialType:
		return made.DenialType
	}
	return ""
}

// countDecision counts a decision against every denial_spike rule (DENYs
// only) and denial_rate rule (every decision, and the DENYs among them),
// and raises the alerts it crosses.
func (e *Engine) countDecision(ctx context.Context, v eventstore.View) {
	ev, err := domain.Decode(decision.TypeMade, v.Payload)
	if err != nil {
		return // verify reports a record that does not decode as tampering elsewhere
	}
	made := ev.(decision.Made)
	at := time.Unix(0, v.TimeNanos).UTC()
	groupsFull := len(e.spikes)+len(e.rates) >= e.cfg.MaxGroups*max(1, len(e.spikeRules))
	for _, r := range e.spikeRules {
		denied := !made.Allowed() && (r.DenialType == "" || r.DenialType == made.DenialType)
		if r.Kind == alerts.KindDenialSpike && !denied {
			continue
		}
		group := decisionGroup(r, made)
		if group == "" {
			continue
		}
		k := r.RuleID + "\x00" + group
		length := time.Duration(r.Window)
		if r.Kind == alerts.KindDenialRate {
			if w, ok := windowOf(e.rates, k, groupsFull, func() *rateWindow { return newRateWindow(length) }); ok {
				if a, ok := w.add(at, denied, r, group); ok {
					e.raise(ctx, a)
				}
			}
			continue
		}
		if w, ok := windowOf(e.spikes, k, groupsFull, func() *window { return newWindow(length) }); ok {
			if a, ok := crossing(w, w.add(at), r, group, at); ok {
				e.raise(ctx, a)
			}
		}
	}
	e.rearm(at)
}

// windowOf returns the window of key k in m, made by fresh and stored
// unless full (then ok is false).
func windowOf[W any](m map[string]W, k string, full bool, fresh func() W) (w W, ok bool) {
	if w, ok = m[k]; ok || full {
		return w, ok
	}
	w = fresh()
	m[k] = w
	return w, true
}

// rearm re-arms every spike and rate window that fell below its threshold
// at t and forgets windows that hold nothing.
func (e *Engine) rearm(t time.Time) {
	for k, w := range e.spikes {
		id, _, _ := strings.Cut(k, "\x00")
		r := e.spikeRules[id]
		n := w.count(t)
		if n < int64(r.Threshold) {
			w.armed = true
		}
		if n == 0 {
			delete(e.spikes, k)
		}
	}
	for k, w := range e.rates {
		id, _, _ := strings.Cut(k, "\x00")
		all, denied := w.all.count(t), w.deny.count(t)
		if !rateReached(e.spikeRules[id], all, denied) {
			w.armed = true
		}
		if all == 0 {
			delete(e.rates, k)
		}
	}
}

// crossing returns the alert of a window that just reached the rule's
// threshold while armed, and disarms it.
func crossing(w *window, n int64, r alerts.Rule, group string, at time.Time) (alerts.Raised, bool) {
	if n < int64(r.Threshold) {
		w.armed = true
		return alerts.Raised{}, false
	}
	if !w.armed {
		return alerts.Raised{}, false
	}
	w.armed = false
	start := at.Add(-time.Duration(r.Window))
	what := "DENY decisions"
	if r.Kind == alerts.KindInvalidKey {
		what = "requests with an invalid, revoked or expired key"
	}
	return alerts.Raised{
		RuleID: r.RuleID, Kind: r.Kind, Subject: r.GroupBy + ":" + group,
		WindowStart: &start, WindowEnd: &at,
		Figures: map[string]int64{"count": n, "threshold": int64(r.Threshold), "window_seconds": int64(time.Duration(r.Window) / time.Second)},
		Detail:  fmt.Sprintf("%d %s for %s %s within %s (threshold %d).", n, what, r.GroupBy, group, time.Duration(r.Window), r.Threshold),
	}, true
}

// InvalidKey counts one request refused because its key was unknown,
// revoked or expired: prefix is the key's display prefix (or "malformed"),
// remoteAddr the client address (host or host:port). It appends nothing
// and never blocks: a crossing is handed to the engine goroutine, or
// dropped with a log line when the engine is that far behind.
func (e *Engine) InvalidKey(prefix, remoteAddr string) {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		remoteAddr = host
	}
	now := e.cfg.Clock()
	e.mu.Lock()
	var found []alerts.Raised
	for _, r := range e.invalidRules {
		group := prefix
		if r.GroupBy == alerts.GroupRemoteAddr {
			group = remoteAddr
		}
		k := r.RuleID + "\x00" + group
		w, ok := e.invalid[k]
		if !ok {
			if len(e.invalid) >= e.cfg.MaxGroups*len(e.invalidRules) {
				if !e.groupsFull[r.RuleID] {
					e.groupsFull[r.RuleID] = true
					e.cfg.Logger.Warn("alerting: too many groups counted; new ones are ignored", "rule_id", r.RuleID, "max_groups", e.cfg.MaxGroups)
				}
				continue
			}
			w = newWindow(time.Duration(r.Window))
			e.invalid[k] = w
		}
		if a, ok := crossing(w, w.add(now), r, group, now.UTC()); ok {
			found = append(found, a)
		}
	}
	e.mu.Unlock()
	for _, a := range found {
		select {
		case e.crossed <- a:
		default:
			e.cfg.Logger.Warn("alerting: alert dropped, engine busy", "rule_id", a.RuleID, "subject", a.Subject)
		}
	}
}

// refreshInvalidRules takes the invalid_key rules in force, drops the
// windows of rules that changed or went and those that fell idle, and
// re-arms the windows below their threshold.
func (e *Engine) refreshInvalidRules() {
	var rules []alerts.Rule
	byID := map[string]alerts.Rule{}
	for _, r := range e.cfg.Ledger.AlertRules() {
		if r.Kind == alerts.KindInvalidKey {
			rules = append(rules, r)
			byID[r.RuleID] = r
		}
	}
	now := e.cfg.Clock()
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := map[string]bool{}
	for _, old := range e.invalidRules {
		if r, ok := byID[old.RuleID]; ok && r.Equal(old) {
			keep[old.RuleID] = true
		}
	}
	for k, w := range e.invalid {
		id, _, _ := strings.Cut(k, "\x00")
		n := w.count(now)
		if !keep[id] || n == 0 {
			delete(e.invalid, k)
			continue
		}
		if n < int64(byID[id].Threshold) {
			w.armed = true
		}
	}
	e.invalidRules = rules
	clear(e.groupsFull)
}
