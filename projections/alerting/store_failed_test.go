package alerting_test

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

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestFailedStoreAlertIsDelivered makes the log's fsync fail for real
// (errorfs under Pebble): the log fails closed, and the engine delivers one
// store_failed alert, signed, to a real receiver, under the rule of that
// kind. It cannot be on the chain: the log refuses appends.
func TestFailedStoreAlertIsDelivered(t *testing.T) {
	t.Parallel()
	const secret = "whsec_store"
	var mu sync.Mutex
	var got []alerting.Alert
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.SignatureHeader), b, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var a alerting.Alert
		if json.Unmarshal(b, &a) != nil {
			http.Error(w, "not an alert", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	received := func() []alerting.Alert {
		mu.Lock()
		defer mu.Unlock()
		return append([]alerting.Alert(nil), got...)
	}

	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData {
			return errorfs.ErrInjected
		}
		return nil
	})}
	logger := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: errorfs.Wrap(vfs.NewMem(), toggle), CreateIfMissing: true, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	ledger, err := writeside.Open(context.Background(), writeside.Config{Store: store, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ledger.Close() })
	_, err = ledger.SetAlertRule(context.Background(), writeside.ActorAlertSync, alerts.Rule{RuleID: "disk", Kind: alerts.KindStoreFailed})
	require.NoError(t, err)
	sender, err := webhook.New(webhook.Config{Targets: []webhook.Target{{URL: recv.URL, Secret: secret}}, BaseDelay: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sender.Close() })
	const interval = 20 * time.Millisecond
	engine, err := alerting.New(alerting.Config{
		Ledger: ledger, Log: store, Logger: logger, CheckEvery: interval, VerifyEvery: alerting.NoFullVerify,
		Deliver: func(a alerting.Alert) {
			b, err := json.Marshal(a)
			require.NoError(t, err)
			sender.Send(a.AlertID, b)
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); assert.NoError(t, engine.Run(ctx)) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(5 * interval)
	require.Empty(t, received(), "a healthy store raises nothing")

	toggle.On()
	_, _, _, err = ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "lost", Scope: "read"})
	require.ErrorIs(t, err, eventstore.ErrStoreFailed)
	require.Eventually(t, func() bool { return len(received()) > 0 }, 10*time.Second, 5*time.Millisecond)
	a := received()[0]
	assert.Equal(t, alerts.KindStoreFailed, a.Kind)
	assert.Equal(t, "disk", a.RuleID)
	assert.Equal(t, "chain:"+eventstore.DefaultChain, a.Subject)
	assert.Zero(t, a.Seq, "not on the chain: the log refuses appends")
	assert.NotEmpty(t, a.AlertID)

	time.Sleep(10 * interval)
	assert.Len(t, received(), 1, "once per process")
}
