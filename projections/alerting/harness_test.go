package alerting_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/writeside"
)

var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// clock is a clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// delivered collects what the engine hands to Deliver.
type delivered struct {
	mu  sync.Mutex
	got []alerting.Alert
}

func (d *delivered) add(a alerting.Alert) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, a)
}

func (d *delivered) all() []alerting.Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]alerting.Alert(nil), d.got...)
}

func (d *delivered) ofKind(kind string) []alerting.Alert {
	var out []alerting.Alert
	for _, a := range d.all() {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// harness is a real store in a temporary folder, a Ledger on a hand-moved
// clock and an Engine running on them.
type harness struct {
	t      *testing.T
	dir    string
	clock  *clock
	out    *delivered
	cfg    func(*alerting.Config)
	store  *eventstore.Store
	ledger *writeside.Ledger
	engine *alerting.Engine
	stop   func()
}

func newHarness(t *testing.T, cfg func(*alerting.Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: &clock{now: t0}, out: &delivered{}, cfg: cfg}
	h.open(true)
	t.Cleanup(h.close)
	return h
}

func (h *harness) open(create bool) {
	h.t.Helper()
	logger := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: h.dir, CreateIfMissing: create, Logger: logger})
	require.NoError(h.t, err)
	ledger, err := writeside.Open(context.Background(), writeside.Config{Store: store, Clock: h.clock.Now, Logger: logger})
	require.NoError(h.t, err)
	cfg := alerting.Config{Ledger: ledger, Log: store, Logger: logger, CheckEvery: 10 * time.Millisecond,
		VerifyEvery: alerting.NoFullVerify, Deliver: h.out.add}
	if h.cfg != nil {
		h.cfg(&cfg)
	}
	engine, err := alerting.New(cfg)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); require.NoError(h.t, engine.Run(ctx)) }()
	h.store, h.ledger, h.engine = store, ledger, engine
	h.stop = func() { cancel(); <-done }
}

func (h *harness) close() {
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	require.NoError(h.t, h.ledger.Close())
	require.NoError(h.t, h.store.Close())
}

func (h *harness) restart() {
	h.close()
	h.open(false)
}

func (h *harness) setRule(r alerts.Rule) {
	h.t.Helper()
	_, err := h.ledger.SetAlertRule(context.Background(), writeside.ActorAlertSync, r)
	require.NoError(h.t, err)
}

// settle gives the engine many check intervals to act, for assertions that
// nothing more happens.
func (h *harness) settle() { time.Sleep(200 * time.Millisecond) }

// raisedOnChain counts the alert.raised records in the log.
func (h *harness) raisedOnChain() int {
	h.t.Helper()
	n := 0
	require.NoError(h.t, h.store.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		if r.Type == alerts.TypeRaised {
			n++
		}
		return nil
	}))
	return n
}
