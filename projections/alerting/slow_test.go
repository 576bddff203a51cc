package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
// decision on two stacks alike but for their receiver: one answers at once,
// the other takes slowReceiver per alert (its queue fills and the rest is
// dead-lettered). Evaluations alternate between the two, so the machine's
// load falls on both alike, and the slow side's p99 must stay within
// p99Ratio of the fast side's. The bound is generous but real: an evaluate
// that waited for delivery would take slowReceiver, hundreds of times a
// durable evaluate, and one slowed by the dead-lettering would show in the
// tail of evalSamples decisions.
func TestSlowReceiverDoesNotHoldEvaluate(t *testing.T) {
	t.Parallel()
	const (
		slowReceiver = 2 * time.Second
		evalSamples  = 1500 // per side; p99 is the 15th slowest
		p99Ratio     = 3.0
		queue        = 8 // the slow receiver's
	)
	type side struct {
		name   string
		hits   atomic.Int32
		out    *delivered
		sender *webhook.Sender
		h      *harness
		key    keys.Key
		took   []time.Duration
	}
	newSide := func(name string, delay time.Duration, queue int) *side {
		sd := &side{name: name, out: &delivered{}}
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sd.hits.Add(1)
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(recv.Close)
		sender, err := webhook.New(webhook.Config{Targets: []webhook.Target{{URL: recv.URL}}, QueueSize: queue,
			Timeout: time.Minute, MaxDeadLetters: 2 * evalSamples, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = sender.Close() }) // before recv.Close: it cancels the attempt in flight
		sd.sender = sender
		sd.h = newHarness(t, func(c *alerting.Config) {
			c.Deliver = func(a alerting.Alert) {
				sd.out.add(a)
				b, _ := json.Marshal(a)
				sender.Send(a.AlertID, b)
			}
		})
		sd.h.setRule(alerts.Rule{RuleID: "every-agent", Kind: alerts.KindDenialSpike, GroupBy: alerts.GroupAgent,
			Threshold: 1, Window: alerts.Duration(time.Minute)})
		_, plain, _, err := sd.h.ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "eval", Scope: "evaluate"})
		require.NoError(t, err)
		sd.key, err = sd.h.ledger.Authenticate(plain)
		require.NoError(t, err)
		return sd
	}
	// The fast side's queue holds every alert: none is dead-lettered, so
	// the dead-lettering is the slow side's alone.
	fast, slow := newSide("fast", 0, evalSamples), newSide("slow", slowReceiver, queue)

	evaluate := func(sd *side, i int) {
		start := time.Now()
		_, _, err := sd.h.ledger.Evaluate(context.Background(), sd.key, policy.Request{
			AgentRole: "r", AgentID: fmt.Sprintf("ghost-%d", i), SourceID: "crm", Sensitivity: "public", SessionID: fmt.Sprintf("s-%d", i),
		})
		require.NoError(t, err)
		sd.took = append(sd.took, time.Since(start))
	}
	for i := range evalSamples {
		if i%2 == 0 { // neither side always goes first
			evaluate(fast, i)
			evaluate(slow, i)
		} else {
			evaluate(slow, i)
			evaluate(fast, i)
		}
	}
	p99 := map[string]time.Duration{}
	for _, sd := range []*side{fast, slow} {
		slices.Sort(sd.took)
		p99[sd.name] = sd.took[evalSamples*99/100]
		t.Logf("%s receiver: evaluate p50 %s p99 %s max %s", sd.name, sd.took[evalSamples/2], p99[sd.name], sd.took[evalSamples-1])
	}
	ratio := float64(p99["slow"]) / float64(p99["fast"])
	t.Logf("p99 slow/fast %.2f (bound %.1f)", ratio, p99Ratio)
	assert.LessOrEqual(t, ratio, p99Ratio, "a slow receiver does not move evaluate p99")

	for _, sd := range []*side{fast, slow} {
		require.Eventually(t, func() bool { return len(sd.out.all()) == evalSamples }, 30*time.Second, 10*time.Millisecond,
			"%s: one alert per agent, got %d", sd.name, len(sd.out.all()))
	}
	require.Eventually(t, func() bool { return fast.hits.Load() == evalSamples }, 30*time.Second, 10*time.Millisecond,
		"the fast receiver gets every alert")
	assert.Empty(t, fast.sender.DeadLetters())
	// Every alert for the slow receiver was tried (hits), is waiting in its
	// queue, or was dead-lettered at once.
	require.Eventually(t, func() bool {
		return len(slow.sender.DeadLetters()) >= evalSamples-queue-int(slow.hits.Load())
	}, 30*time.Second, 10*time.Millisecond)
	assert.Less(t, int(slow.hits.Load()), evalSamples/10, "the slow receiver held its attempts")
}
