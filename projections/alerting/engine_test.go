package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/writeside"
)

const day = 24 * time.Hour

// TestKeyExpiryWarnsOncePerThresholdAcrossRestarts: a key created to expire
// in 15 days warns at 14 days and at 1 day, once each, also across a
// restart, because the warnings are on the chain.
func TestKeyExpiryWarnsOncePerThresholdAcrossRestarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRule(alerts.Rule{RuleID: "expiry", Kind: alerts.KindKeyExpiring, Days: []int{14, 1}})
	days := 15
	created, _, _, err := h.ledger.CreateKey(context.Background(), writeside.ActorInit,
		keys.CreateCommand{Name: "agent-key", Scope: "evaluate", ExpiresDays: &days})
	require.NoError(t, err)
	h.settle()
	assert.Empty(t, h.out.all(), "15 days left: no warning yet")

	h.clock.Advance(day + time.Second) // 14 days minus a second left
	require.Eventually(t, func() bool { return len(h.out.all()) == 1 }, 10*time.Second, 5*time.Millisecond)
	a := h.out.all()[0]
	assert.Equal(t, alerts.KindKeyExpiring, a.Kind)
	assert.Equal(t, "expiry", a.RuleID)
	assert.Equal(t, "key:"+created.KeyID, a.Subject)
	assert.Equal(t, int64(14), a.Figures["days"])
	assert.NotZero(t, a.Seq)
	h.settle()
	assert.Len(t, h.out.all(), 1, "warned once at 14 days")

	h.restart()
	h.settle()
	assert.Empty(t, h.out.all()[1:], "a restart does not warn again")

	h.clock.Advance(13 * day) // 1 day minus a second left
	require.Eventually(t, func() bool { return len(h.out.all()) == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(1), h.out.all()[1].Figures["days"])
	h.restart()
	h.clock.Advance(time.Hour)
	h.settle()
	assert.Len(t, h.out.all(), 2)
	assert.Equal(t, 2, h.raisedOnChain(), "one record per key and threshold")

	h.clock.Advance(day) // expired: nothing more to say
	h.settle()
	assert.Len(t, h.out.all(), 2)
}

// TestDenialSpikeFiresOnceAtItsThreshold: DENYs per role over a window
// fire once when they reach the threshold, not below, and again only after
// the window fell below it.
func TestDenialSpikeFiresOnceAtItsThreshold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRule(alerts.Rule{RuleID: "deny-spike", Kind: alerts.KindDenialSpike, GroupBy: alerts.GroupRole,
		Threshold: 3, Window: alerts.Duration(time.Minute)})
	h.settle()
	_, plain, _, err := h.ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "eval", Scope: "evaluate"})
	require.NoError(t, err)
	key, err := h.ledger.Authenticate(plain)
	require.NoError(t, err)
	deny := func(role string) {
		t.Helper()
		// No agent is registered: every decision is a DENY.
		made, _, err := h.ledger.Evaluate(context.Background(), key, policy.Request{
			AgentRole: role, AgentID: "ghost", SourceID: "crm", Sensitivity: "public", SessionID: "s-" + role,
		})
		require.NoError(t, err)
		require.Equal(t, decision.Deny, made.Decision)
	}
	deny("loan_officer")
	deny("loan_officer")
	deny("teller") // another group
	h.settle()
	assert.Empty(t, h.out.all(), "below the threshold")

	deny("loan_officer")
	require.Eventually(t, func() bool { return len(h.out.all()) == 1 }, 10*time.Second, 5*time.Millisecond)
	a := h.out.all()[0]
	assert.Equal(t, alerts.KindDenialSpike, a.Kind)
	assert.Equal(t, "role:loan_officer", a.Subject)
	assert.Equal(t, int64(3), a.Figures["count"])
	require.NotNil(t, a.WindowStart)
	assert.Equal(t, time.Minute, a.WindowEnd.Sub(*a.WindowStart))

	deny("loan_officer")
	deny("loan_officer")
	h.settle()
	assert.Len(t, h.out.all(), 1, "fired once while above the threshold")

	h.clock.Advance(2 * time.Minute) // the window empties: re-armed
	h.settle()
	for range 3 {
		deny("loan_officer")
	}
	require.Eventually(t, func() bool { return len(h.out.all()) == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, h.raisedOnChain())
}

// TestInvalidKeyCountsWithoutAppending: invalid-key rejections are counted
// in memory; only the alert, when the threshold is reached, is appended.
func TestInvalidKeyCountsWithoutAppending(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRule(alerts.Rule{RuleID: "leaked", Kind: alerts.KindInvalidKey, GroupBy: alerts.GroupKeyPrefix,
		Threshold: 5, Window: alerts.Duration(time.Minute)})
	h.settle()
	head := func() uint64 {
		hd, err := h.store.Head("default")
		require.NoError(t, err)
		return hd.Seq
	}
	before := head()
	for range 4 {
		h.engine.InvalidKey("cst_abc123", "192.0.2.7:5555")
	}
	h.engine.InvalidKey("cst_zzz999", "192.0.2.7:5555")
	h.settle()
	assert.Equal(t, before, head(), "rejections append nothing")
	assert.Empty(t, h.out.all())
	h.engine.InvalidKey("cst_abc123", "192.0.2.8:1")
	require.Eventually(t, func() bool { return len(h.out.all()) == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, "key_prefix:cst_abc123", h.out.all()[0].Subject)
	assert.Equal(t, before+1, head(), "the alert is the one record")
	for range 10 {
		h.engine.InvalidKey("cst_abc123", "192.0.2.8:1")
	}
	h.settle()
	assert.Len(t, h.out.all(), 1)
}

func TestEngineReportsIncrementalVerify(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRule(alerts.Rule{RuleID: "verify", Kind: alerts.KindVerifyFailed})
	require.Eventually(t, func() bool {
		valid, seq := h.engine.Status()
		return valid && seq == 1
	}, 10*time.Second, 5*time.Millisecond)
	assert.Empty(t, h.out.all())
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := alerting.New(alerting.Config{CheckEvery: -1, VerifyEvery: -5})
	require.Error(t, err)
	for _, want := range []string{"Ledger", "Log", "CheckEvery", "VerifyEvery"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestDenialRateFiresOnceAtItsThreshold: the DENY share of one agent's
// decisions fires once when it reaches the threshold with at least
// min_decisions in the window, not below either, and again only after it
// fell below.
func TestDenialRateFiresOnceAtItsThreshold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRule(alerts.Rule{RuleID: "deny-rate", Kind: alerts.KindDenialRate, GroupBy: alerts.GroupAgent,
		Threshold: 50, MinDecisions: 4, Window: alerts.Duration(time.Minute)})
	ctx := context.Background()
	_, err := h.ledger.CreatePolicy(ctx, writeside.ActorInit, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}})
	require.NoError(t, err)
	_, err = h.ledger.RegisterAgent(ctx, writeside.ActorInit, agents.RegisterCommand{AgentID: "a", AgentRole: "r"})
	require.NoError(t, err)
	_, err = h.ledger.ChangeAgentStatus(ctx, writeside.ActorInit, "a", "approved")
	require.NoError(t, err)
	_, plain, _, err := h.ledger.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "eval", Scope: "evaluate"})
	require.NoError(t, err)
	key, err := h.ledger.Authenticate(plain)
	require.NoError(t, err)
	decide := func(source, want string) {
		t.Helper()
		made, _, err := h.ledger.Evaluate(ctx, key, policy.Request{AgentRole: "r", AgentID: "a", UserID: "u",
			SourceID: source, Sensitivity: policy.LevelLow, SessionID: "s"})
		require.NoError(t, err)
		require.Equal(t, want, made.Decision, made.Reason)
	}
	allow := func() { decide("crm", decision.Allow) }
	deny := func() { decide("hr", decision.Deny) }

	deny()
	deny()
	deny() // 3 of 3: 100%, but fewer than min_decisions
	h.settle()
	assert.Empty(t, h.out.all(), "below min_decisions")
	allow() // 3 of 4: 75%, and min_decisions reached
	require.Eventually(t, func() bool { return len(h.out.all()) == 1 }, 10*time.Second, 5*time.Millisecond)
	a := h.out.all()[0]
	assert.Equal(t, alerts.KindDenialRate, a.Kind)
	assert.Equal(t, "agent:a", a.Subject)
	assert.Equal(t, map[string]int64{"decisions": 4, "denials": 3, "percent": 75, "threshold": 50,
		"min_decisions": 4, "window_seconds": 60}, a.Figures)

	deny() // 4 of 5
	h.settle()
	assert.Len(t, h.out.all(), 1, "fired once while at or above the threshold")
	for range 5 {
		allow() // down to 4 of 10: below, re-armed
	}
	deny() // 5 of 11: 45%, below
	h.settle()
	assert.Len(t, h.out.all(), 1, "below the threshold")
	deny() // 6 of 12: 50%, at the threshold again
	require.Eventually(t, func() bool { return len(h.out.all()) == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(50), h.out.all()[1].Figures["percent"])
	assert.Equal(t, 2, h.raisedOnChain())
}
