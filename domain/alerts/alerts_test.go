package alerts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/alerts"
)

var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

func spike() alerts.Rule {
	return alerts.Rule{RuleID: "deny-spike", Kind: alerts.KindDenialSpike, GroupBy: alerts.GroupRole,
		Threshold: 10, Window: alerts.Duration(5 * time.Minute)}
}

func TestRuleValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rule   alerts.Rule
		fields []string // every field reported, in order; nil: valid
	}{
		{"denial spike", spike(), nil},
		{"denial rate", alerts.Rule{RuleID: "rate", Kind: alerts.KindDenialRate, GroupBy: alerts.GroupAgent, Threshold: 50, Window: alerts.Duration(time.Minute), MinDecisions: 20}, nil},
		{"bad rate", alerts.Rule{RuleID: "rate", Kind: alerts.KindDenialRate, GroupBy: alerts.GroupAgent, Threshold: 150, Window: alerts.Duration(time.Minute)},
			[]string{"threshold", "min_decisions"}},
		{"spike with min_decisions", alerts.Rule{RuleID: "s", Kind: alerts.KindDenialSpike, GroupBy: alerts.GroupRole, Threshold: 5, Window: alerts.Duration(time.Minute), MinDecisions: 3},
			[]string{"min_decisions"}},
		{"key expiring", alerts.Rule{RuleID: "expiry", Kind: alerts.KindKeyExpiring, Days: []int{14, 1}}, nil},
		{"invalid key", alerts.Rule{RuleID: "leak", Kind: alerts.KindInvalidKey, GroupBy: alerts.GroupKeyPrefix, Threshold: 5, Window: alerts.Duration(time.Minute)}, nil},
		{"verify", alerts.Rule{RuleID: "verify", Kind: alerts.KindVerifyFailed}, nil},
		{"store", alerts.Rule{RuleID: "store", Kind: alerts.KindStoreFailed}, nil},
		{"empty", alerts.Rule{}, []string{"rule_id", "kind"}},
		{"bad spike", alerts.Rule{RuleID: "a b", Kind: alerts.KindDenialSpike, GroupBy: "team", Days: []int{1}},
			[]string{"rule_id", "group_by", "threshold", "window", "days"}},
		{"window too long", alerts.Rule{RuleID: "x", Kind: alerts.KindInvalidKey, GroupBy: alerts.GroupRemoteAddr, Threshold: 1, Window: alerts.Duration(30 * 24 * time.Hour)},
			[]string{"window"}},
		{"bad days", alerts.Rule{RuleID: "x", Kind: alerts.KindKeyExpiring, Days: []int{14, 0, 14, 400}, Threshold: 3},
			[]string{"days[1]", "days[2]", "days[3]", "threshold"}},
		{"no days", alerts.Rule{RuleID: "x", Kind: alerts.KindKeyExpiring}, []string{"days"}},
		{"unknown kind", alerts.Rule{RuleID: "x", Kind: "weather"}, []string{"kind"}},
		{"verify with threshold", alerts.Rule{RuleID: "x", Kind: alerts.KindVerifyFailed, Threshold: 2}, []string{"threshold"}},
		{"long id", alerts.Rule{RuleID: strings.Repeat("a", 65), Kind: alerts.KindVerifyFailed}, []string{"rule_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.rule.Validate()
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, alerts.ErrInvalidRule)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap()[1:] {
				for _, fe := range e.(interface{ Unwrap() []error }).Unwrap() {
					got = append(got, fe.(*alerts.FieldError).Field)
				}
			}
			assert.Equal(t, tt.fields, got)
		})
	}
}

func TestRulesAndOnceOnlyAlertsFoldThroughTheDomain(t *testing.T) {
	t.Parallel()
	s := domain.NewState()
	seq := uint64(0)
	apply := func(evs []alerts.Event) {
		for _, ev := range evs {
			seq++
			payload, err := domain.Encode(ev)
			require.NoError(t, err)
			decoded, err := domain.Decode(ev.EventType(), payload)
			require.NoError(t, err)
			require.Equal(t, ev, decoded, "decode gives the event back")
			require.NoError(t, s.Apply(domain.Meta{Seq: seq, Time: t0}, decoded))
		}
	}
	evs, err := alerts.SetRule(s.Alerts, spike(), t0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	apply(evs)
	evs, err = alerts.SetRule(s.Alerts, spike(), t0)
	require.NoError(t, err)
	assert.Empty(t, evs, "setting an equal rule appends nothing")
	changed := spike()
	changed.Threshold = 20
	evs, err = alerts.SetRule(s.Alerts, changed, t0)
	require.NoError(t, err)
	apply(evs)
	r, ok := s.Alerts.Rule("deny-spike")
	require.True(t, ok)
	assert.Equal(t, 20, r.Threshold)

	a := alerts.Raised{AlertID: "alr_1", RuleID: "expiry", Kind: alerts.KindKeyExpiring, Subject: "key:key_1",
		DedupeKey: "key_expiring/expiry/key_1/14", Figures: map[string]int64{"days": 14}, Detail: "expires soon"}
	evs, err = alerts.Raise(s.Alerts, a, t0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	apply(evs)
	a.AlertID = "alr_2"
	evs, err = alerts.Raise(s.Alerts, a, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Empty(t, evs, "a once-only alert is raised once")
	got, ok := s.Alerts.Raised(a.DedupeKey)
	require.True(t, ok)
	assert.Equal(t, seq, got)

	// Snapshot round trip keeps rules and dedupe keys.
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	back := domain.NewState()
	require.NoError(t, back.UnmarshalSnapshot(b))
	assert.Equal(t, s.Alerts.Rules(), back.Alerts.Rules())
	_, ok = back.Alerts.Raised(a.DedupeKey)
	assert.True(t, ok)
	assert.Equal(t, uint64(1), back.Alerts.Count())
	again, err := back.MarshalSnapshot()
	require.NoError(t, err)
	assert.Equal(t, b, again, "equal states give equal bytes")

	evs, err = alerts.DeleteRule(s.Alerts, "deny-spike", t0)
	require.NoError(t, err)
	apply(evs)
	assert.Empty(t, s.Alerts.Rules())
	_, err = alerts.DeleteRule(s.Alerts, "deny-spike", t0)
	require.ErrorIs(t, err, alerts.ErrNotFound)
	require.ErrorIs(t, s.Apply(domain.Meta{Seq: 99}, alerts.RuleDeleted{RuleID: "nope"}), alerts.ErrInconsistent)
}

func TestRaiseRefusesIncompleteAlerts(t *testing.T) {
	t.Parallel()
	_, err := alerts.Raise(&alerts.State{}, alerts.Raised{Detail: "x"}, t0)
	require.ErrorIs(t, err, alerts.ErrInvalidAlert)
	for _, f := range []string{"alert_id", "rule_id", "kind"} {
		assert.Contains(t, err.Error(), f)
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	var d alerts.Duration
	require.NoError(t, d.UnmarshalJSON([]byte(`"90s"`)))
	assert.Equal(t, alerts.Duration(90*time.Second), d)
	b, err := d.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, `"1m30s"`, string(b))
	require.Error(t, d.UnmarshalJSON([]byte(`"soon"`)))
}
