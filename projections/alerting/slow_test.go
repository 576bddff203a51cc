package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestSlowReceiverDoesNotHoldEvaluate raises an alert for nearly every
// decision while the only receiver never answers: evaluations keep their
// pace (bounded generously, no timing ratio), and what could not be queued
// is dead-lettered.
func TestSlowReceiverDoesNotHoldEvaluate(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	sender, err := webhook.New(webhook.Config{Targets: []webhook.Target{{URL: slow.URL}}, QueueSize: 8, Timeout: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sender.Close() })
	out := &delivered{}
	h := newHarness(t, func(c *alerting.Config) {
		c.Deliver = func(a alerting.Alert) {
			out.add(a)
			b, _ := json.Marshal(a)
			sender.Send(a.AlertID, b)
		}
	})
	h.setRule(alerts.Rule{RuleID: "every-agent", Kind: alerts.KindDenialSpike, GroupBy: alerts.GroupAgent,
		Threshold: 1, Window: alerts.Duration(time.Minute)})
	_, plain, _, err := h.ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "eval", Scope: "evaluate"})
	require.NoError(t, err)
	key, err := h.ledger.Authenticate(plain)
	require.NoError(t, err)

	const n = 300
	took := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		_, _, err := h.ledger.Evaluate(context.Background(), key, policy.Request{
			AgentRole: "r", AgentID: fmt.Sprintf("ghost-%d", i), SourceID: "crm", Sensitivity: "public", SessionID: fmt.Sprintf("s-%d", i),
		})
		require.NoError(t, err)
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	p99 := took[n*99/100]
	t.Logf("evaluate p50 %s p99 %s max %s with a receiver that never answers", took[n/2], p99, took[n-1])
	assert.Less(t, p99, 2*time.Second, "evaluate never waits for delivery")
	require.Eventually(t, func() bool { return len(out.all()) == n }, 30*time.Second, 10*time.Millisecond, "one alert per agent, got %d", len(out.all()))
	require.Eventually(t, func() bool { return len(sender.DeadLetters()) >= n-1-8 }, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, int32(1), hits.Load(), "one attempt in flight, held by the receiver")
}
