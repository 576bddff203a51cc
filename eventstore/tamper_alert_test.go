package eventstore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestTamperedRecordRaisesTheVerifyAlert flips a byte in a stored record
// under a running store and checks that the alerts engine's scheduled full
// pass raises verify_failed within one check interval, records it on the
// chain and delivers it, signed, to a real receiver.
//
// The byte is flipped just after a clean full pass, the worst moment: the
// next pass is a whole interval away. The bound is the interval plus
// tamperSlack, which covers what follows the pass that finds the break:
// the alert's durable append (one fsync) and one POST over loopback, on a
// loaded machine.
func TestTamperedRecordRaisesTheVerifyAlert(t *testing.T) {
	t.Parallel()
	const (
		secret      = "whsec_tamper"
		interval    = 500 * time.Millisecond
		tamperSlack = 300 * time.Millisecond
	)
	type hit struct {
		at   time.Time
		sig  string
		body []byte
	}
	var mu sync.Mutex
	var hits []hit
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{at, r.Header.Get(webhook.SignatureHeader), b})
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)

	logger := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	ledger, err := writeside.Open(context.Background(), writeside.Config{Store: store, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ledger.Close() })
	for _, name := range []string{"a", "b", "c"} {
		_, _, _, err := ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: name, Scope: "read"})
		require.NoError(t, err)
	}
	sender, err := webhook.New(webhook.Config{Targets: []webhook.Target{{URL: recv.URL, Secret: secret}}, BaseDelay: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sender.Close() })
	// Told at the end of every clean verify: with no appends after Run's
	// start, those are the full passes.
	passed := make(chan struct{}, 16)
	engine, err := alerting.New(alerting.Config{
		Ledger: ledger, Log: store, Logger: logger, CheckEvery: interval, VerifyEvery: interval,
		OnVerify: func(valid bool, _ uint64) {
			if valid {
				select {
				case passed <- struct{}{}:
				default:
				}
			}
		},
		Deliver: func(a alerting.Alert) {
			b, err := json.Marshal(a)
			if err == nil {
				sender.Send(a.AlertID, b)
			}
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = engine.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for range 2 { // two clean passes: the one at Run and the next
		select {
		case <-passed:
		case <-time.After(10 * interval):
			require.FailNow(t, "no clean full pass")
		}
	}
	valid, _ := engine.Status()
	require.True(t, valid)
	mu.Lock()
	require.Empty(t, hits)
	mu.Unlock()

	tampered := time.Now()
	require.NoError(t, eventstore.TamperForTest(store, eventstore.DefaultChain, 2))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hits) > 0
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	h := hits[0]
	mu.Unlock()
	took := h.at.Sub(tampered)
	t.Logf("tamper to alert at the receiver: %s (check interval %s, slack %s)", took, interval, tamperSlack)
	assert.LessOrEqual(t, took, interval+tamperSlack, "the verify alert arrives within one check interval")
	require.NoError(t, webhook.Verify([]byte(secret), h.sig, h.body, time.Now(), time.Minute))
	var a alerting.Alert
	require.NoError(t, json.Unmarshal(h.body, &a))
	assert.Equal(t, alerts.KindVerifyFailed, a.Kind)
	assert.Equal(t, alerting.BuiltinVerifyRule, a.RuleID)
	assert.Equal(t, int64(2), a.Figures["broken_seq"])
	assert.Contains(t, a.Detail, "hash_mismatch")
	rec, err := store.Get(context.Background(), eventstore.DefaultChain, a.Seq)
	require.NoError(t, err)
	assert.Equal(t, alerts.TypeRaised, rec.Type, "the alert is itself on the chain")
	assert.Equal(t, writeside.ActorAlerts, rec.Actor)
	valid, _ = engine.Status()
	assert.False(t, valid)

	time.Sleep(3 * interval) // more full passes find the same break
	mu.Lock()
	assert.Len(t, hits, 1, "raised once for one break")
	mu.Unlock()
}
