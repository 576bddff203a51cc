// Package metrics exposes custos's operational metrics in the Prometheus
// text exposition format.
//
// It uses prometheus/client_golang, the reference Go client of the
// Prometheus project: the exposition format it writes is the one every
// Prometheus-compatible scraper (Prometheus, VictoriaMetrics, the
// OpenTelemetry collector, Grafana Agent/Alloy, Datadog) reads, and its
// collectors are what Go operators expect to find. Writing the format by
// hand would save one dependency and cost correctness (escaping, histogram
// invariants, content negotiation).
//
// A Metrics owns its own prometheus.Registry; nothing is registered with the
// global default registry, so two servers in one process (tests) never
// collide. Counters and histograms are fed by the code paths they describe
// (ObserveDecision, ObserveCommit, ObserveVerify); the key and chain-head
// gauges are computed at scrape time from the live state (Track), so they
// cannot drift from it.
//
// A Metrics is safe for concurrent use and owns nothing that needs closing.
//
// # Metrics
//
//	custos_decisions_total{decision,denial_type}    counter    decisions answered (denial_type "none" for ALLOW)
//	custos_evaluate_duration_seconds                histogram  evaluate: request decoded to decision durable
//	custos_append_batch_records                     histogram  records per group commit
//	custos_fsync_duration_seconds                   histogram  duration of each synced group commit
//	custos_chain_head_seq                           gauge      durable head seq of the chain (scrape time)
//	custos_last_verify_valid                        gauge      1 valid, 0 broken; absent before the first verify
//	custos_last_verify_timestamp_seconds            gauge      when the last verify finished (Unix seconds)
//	custos_keys{scope,state}                        gauge      keys by scope and state active|expired|revoked (scrape time)
//	custos_keys_expiring_14d{scope}                 gauge      active keys that expire within 14 days (scrape time)
//	custos_verify_valid                             gauge      1 while the continuous chain check found nothing (TrackVerify)
//	custos_verify_last_seq                          gauge      last seq the continuous chain check verified (TrackVerify)
//
// plus the standard go_* and process_* collectors.
package metrics

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
)

// Key states, the values of the state label of custos_keys.
const (
	StateActive  = "active"
	StateExpired = "expired"
	StateRevoked = "revoked"
)

// ExpiringWindow is how far ahead custos_keys_expiring_14d looks.
const ExpiringWindow = 14 * 24 * time.Hour

// denialNone is the denial_type label of an ALLOW (Prometheus treats an
// empty label value as an absent label).
const denialNone = "none"

// ErrAlreadyTracking means Track was called a second time.
var ErrAlreadyTracking = errors.New("metrics: Track called twice")

// KeySource is what the scrape-time key gauges read. *writeside.Ledger
// implements it. Both methods must be safe for concurrent use.
type KeySource interface {
	// Keys returns every key ever created.
	Keys() []keys.Key
	// Now is the clock the keys' states are judged at.
	Now() time.Time
}

// Metrics holds custos's collectors and the registry that serves them.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	decisions *prometheus.CounterVec
	evaluate  prometheus.Histogram
	batch     prometheus.Histogram
	fsync     prometheus.Histogram

	verifyMu    sync.Mutex
	verifyValid float64
	verifyAt    time.Time // zero until the first verify

	trackMu  sync.Mutex
	tracking bool
}

// latencyBuckets spans 50µs (an in-memory decision on a fast disk's group
// commit) to 1s (a disk in trouble), roughly 2-2.5x apart.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1,
}

// New returns Metrics with the Go and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_decisions_total",
			Help: "Decisions answered by POST /v1/context/evaluate, by decision and denial type (none for ALLOW).",
		}, []string{"decision", "denial_type"}),
		evaluate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_evaluate_duration_seconds",
			Help:    "Time from an evaluate request entering its handler to its decision being durable, for answered decisions.",
			Buckets: latencyBuckets,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_append_batch_records",
			Help:    "Records written per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 .. 8192, the batch cap
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_fsync_duration_seconds",
			Help:    "Duration of each synced group commit, write to fsync done.",
			Buckets: latencyBuckets,
		}),
	}
	// Start every known series at zero, so rate() sees the first decision.
	m.decisions.WithLabelValues(decision.Allow, denialNone)
	for _, d := range []string{policy.DenialIdentity, policy.DenialRole, policy.DenialSession, policy.DenialPolicy} {
		m.decisions.WithLabelValues(decision.Deny, d)
	}
	m.reg.MustRegister(
		m.decisions, m.evaluate, m.batch, m.fsync,
		verifyCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// Registry returns the registry, for tests and for embedding into another
// exposition.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the exposition format a scraper asks for.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Track registers the scrape-time gauges: custos_keys and
// custos_keys_expiring_14d from src, custos_chain_head_seq from head (nil
// leaves the head out; an error from head leaves it out of that scrape). It
// is separate from New because the store, which takes ObserveCommit, exists
// before the Ledger. Call it once.
func (m *Metrics) Track(src KeySource, head func() (uint64, error)) error {
	m.trackMu.Lock()
	defer m.trackMu.Unlock()
	if m.tracking {
		return ErrAlreadyTracking
	}
	if err := m.reg.Register(stateCollector{src: src, head: head}); err != nil {
		return err
	}
	m.tracking = true
	return nil
}

// ObserveDecision counts one answered decision and its latency.
func (m *Metrics) ObserveDecision(decision, denialType string, took time.Duration) {
	if denialType == "" {
		denialType = denialNone
	}
	m.decisions.WithLabelValues(decision, denialType).Inc()
	m.evaluate.Observe(took.Seconds())
}

// ObserveCommit records one group commit. Its signature is that of
// eventstore.Options.CommitObserver.
func (m *Metrics) ObserveCommit(records int, took time.Duration) {
	m.fsync.Observe(took.Seconds())
	m.batch.Observe(float64(records))
}

// ObserveVerify records the outcome of a completed chain check at at.
func (m *Metrics) ObserveVerify(valid bool, at time.Time) {
	m.verifyMu.Lock()
	defer m.verifyMu.Unlock()
	m.verifyValid = 0
	if valid {
		m.verifyValid = 1
	}
	m.verifyAt = at
}

var (
	descVerifyValid = prometheus.NewDesc("custos_last_verify_valid",
		"1 when the last completed chain verification found the chain valid, 0 when broken. Absent before the first.", nil, nil)
	descVerifyTime = prometheus.NewDesc("custos_last_verify_timestamp_seconds",
		"Unix time at which the last chain verification completed.", nil, nil)
	descHead = prometheus.NewDesc("custos_chain_head_seq",
		"Sequence number of the last durable record of the chain.", nil, nil)
	descKeys = prometheus.NewDesc("custos_keys",
		"API keys by scope and state (active, expired, revoked), at scrape time.", []string{"scope", "state"}, nil)
	descExpiring = prometheus.NewDesc("custos_keys_expiring_14d",
		"Active API keys that expire within 14 days, by scope, at scrape time.", []string{"scope"}, nil)
)

// verifyCollector reports the last verify result, only once there is one:
// a 0 before the first check would read as "chain broken".
type verifyCollector struct{ m *Metrics }

func (c verifyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descVerifyValid
	ch <- descVerifyTime
}

func (c verifyCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.verifyMu.Lock()
	valid, at := c.m.verifyValid, c.m.verifyAt
	c.m.verifyMu.Unlock()
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(descVerifyValid, prometheus.GaugeValue, valid)
	ch <- prometheus.MustNewConstMetric(descVerifyTime, prometheus.GaugeValue, float64(at.Unix())+float64(at.Nanosecond())/1e9)
}

// scopes are the label values of the key gauges, all reported even at 0.
var scopes = []keys.Scope{keys.ScopeAdmin, keys.ScopeRead, keys.ScopeEvaluate}

// stateCollector computes the key and head gauges when scraped.
type stateCollector struct {
	src  KeySource
	head func() (uint64, error)
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descKeys
	ch <- descExpiring
	if c.head != nil {
		ch <- descHead
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.src.Now()
	type counts struct{ active, expired, revoked, expiring int }
	by := make(map[keys.Scope]*counts, len(scopes))
	for _, sc := range scopes {
		by[sc] = &counts{}
	}
	for _, k := range c.src.Keys() {
		n, ok := by[k.Scope]
		if !ok {
			continue // not a scope the domain knows; never stored
		}
		switch State(k, now) {
		case StateRevoked:
			n.revoked++
		case StateExpired:
			n.expired++
		default:
			n.active++
			if k.ExpiresAt.Sub(now) <= ExpiringWindow {
				n.expiring++
			}
		}
	}
	for _, sc := range scopes {
		n := by[sc]
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(n.active), string(sc), StateActive)
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(n.expired), string(sc), StateExpired)
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(n.revoked), string(sc), StateRevoked)
		ch <- prometheus.MustNewConstMetric(descExpiring, prometheus.GaugeValue, float64(n.expiring), string(sc))
	}
	if c.head != nil {
		if seq, err := c.head(); err == nil {
			ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(seq))
		}
	}
}

// State returns the state label of k at now: revoked once its revocation
// took effect (a key inside a rotation grace window is still active), else
// expired once now reaches ExpiresAt, else active. A key that is both
// revoked and expired counts as revoked.
func State(k keys.Key, now time.Time) string {
	switch {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return StateRevoked
	case !now.Before(k.ExpiresAt):
		return StateExpired
	}
	return StateActive
}
