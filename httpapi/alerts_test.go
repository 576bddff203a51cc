package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/alerting/webhook"
)

func TestAlertRulesOverREST(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.postJSON(t, "/v1/alerts/rules", s.admin, `{"rule_id":"spike","kind":"denial_spike","group_by":"team","window":"1h"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
	assert.Equal(t, "Invalid request: group_by must be one of role, agent, source, denial_type; threshold must be at least 1.", r.detail(t))

	r = s.postJSON(t, "/v1/alerts/rules", s.admin, `{"rule_id":"spike","kind":"denial_spike","group_by":"role","threshold":50,"window":"5m"}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	assert.Equal(t, "5m0s", r.object(t)["window"])
	s.waitUsed(t, s.adminID) // the 201 recorded the key's use asynchronously
	before := s.head(t)
	r = s.postJSON(t, "/v1/alerts/rules", s.admin, `{"rule_id":"spike","kind":"denial_spike","group_by":"role","threshold":50,"window":"300s"}`)
	require.Equal(t, http.StatusOK, r.status, "an equal rule: nothing appended")
	assert.Equal(t, before, s.head(t))
	r = s.postJSON(t, "/v1/alerts/rules", s.admin, `{"rule_id":"expiry","kind":"key_expiring","days":[14,1]}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)

	r = s.get(t, "/v1/alerts/rules", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"rules":[
		{"rule_id":"expiry","kind":"key_expiring","days":[14,1]},
		{"rule_id":"spike","kind":"denial_spike","group_by":"role","threshold":50,"window":"5m0s"}]}`, string(r.body))

	r = s.del(t, "/v1/alerts/rules/spike", s.admin)
	require.Equal(t, http.StatusNoContent, r.status)
	r = s.del(t, "/v1/alerts/rules/spike", s.admin)
	require.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "Alert rule not found.", r.detail(t))

	// The changes are records, so a restart keeps them.
	s.restart()
	r = s.get(t, "/v1/alerts/rules", s.admin)
	assert.JSONEq(t, `{"rules":[{"rule_id":"expiry","kind":"key_expiring","days":[14,1]}]}`, string(r.body))
}

func TestAlertsListedWithFilters(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	raise := func(rule, kind, subject string) {
		t.Helper()
		_, _, ok, err := s.ledger.RaiseAlert(ctx, alerts.Raised{RuleID: rule, Kind: kind, Subject: subject, Detail: "d"})
		require.NoError(t, err)
		require.True(t, ok)
	}
	raise("spike", alerts.KindDenialSpike, "role:a")
	s.clock.Advance(time.Hour)
	since := s.clock.Now()
	raise("spike", alerts.KindDenialSpike, "role:b")
	raise("leak", alerts.KindInvalidKey, "key_prefix:cst_abc")
	s.index.Notify()

	subjects := func(query string) []string {
		t.Helper()
		r := s.get(t, "/v1/alerts"+query, s.admin)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		var page struct {
			Alerts []struct {
				Subject string `json:"subject"`
				Seq     uint64 `json:"seq"`
			} `json:"alerts"`
			Next *uint64 `json:"next_after_seq"`
		}
		require.NoError(t, jsonUnmarshal(r.body, &page))
		var out []string
		for _, a := range page.Alerts {
			out = append(out, a.Subject)
		}
		return out
	}
	assert.Equal(t, []string{"role:a", "role:b", "key_prefix:cst_abc"}, subjects(""))
	assert.Equal(t, []string{"role:a", "role:b"}, subjects("?rule_id=spike"))
	assert.Equal(t, []string{"key_prefix:cst_abc"}, subjects("?kind=invalid_key"))
	assert.Equal(t, []string{"role:b", "key_prefix:cst_abc"}, subjects("?since="+since.Format(time.RFC3339Nano)))
	assert.Equal(t, []string{"role:a"}, subjects("?limit=1"))

	r := s.get(t, "/v1/alerts?kind=weather", s.admin)
	require.Equal(t, http.StatusBadRequest, r.status)
	r = s.get(t, "/v1/alerts?since=yesterday", s.admin)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	r = s.get(t, "/v1/audit/events?type=alert.raised", s.admin)
	require.Equal(t, http.StatusOK, r.status, "alerts are ordinary events of the audit trail")
	assert.Len(t, r.object(t)["events"], 3)
}

// TestInvalidKeysRaiseAnAlertButAppendNothing presents a revoked key over
// real HTTP: every rejection is counted by the engine, none appends, and
// the threshold appends the one alert.
func TestInvalidKeysRaiseAnAlertButAppendNothing(t *testing.T) {
	t.Parallel()
	var engine atomic.Pointer[alerting.Engine]
	s := newStack(t, withAlerts(httpapi.AlertHooks{
		InvalidKey: func(prefix, addr string) {
			if e := engine.Load(); e != nil {
				e.InvalidKey(prefix, addr)
			}
		},
		DeadLetters: func(string) []webhook.DeadLetter {
			return []webhook.DeadLetter{{AlertID: "alr_x", URL: "http://127.0.0.1:1/hook", Attempts: 6, LastError: "down", Body: []byte(`{}`)}}
		},
	}))
	e, err := alerting.New(alerting.Config{Ledger: s.ledger, Log: s.store, Logger: slog.New(slog.DiscardHandler),
		CheckEvery: 10 * time.Millisecond, VerifyEvery: alerting.NoFullVerify})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	engine.Store(e)

	r := s.postJSON(t, "/v1/alerts/rules", s.admin, `{"rule_id":"leak","kind":"invalid_key","group_by":"key_prefix","threshold":3,"window":"1m"}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	id, key := s.createKey(t, "leaky", "read", 0)
	require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+id, s.admin).status)
	time.Sleep(100 * time.Millisecond) // the engine has taken the rule
	before := s.head(t)
	for range 2 {
		require.Equal(t, http.StatusForbidden, s.get(t, "/v1/keys", key).status)
	}
	require.Equal(t, http.StatusForbidden, s.get(t, "/v1/keys", "garbage").status, "another group: malformed")
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, before, s.head(t), "rejected requests append nothing")
	require.Equal(t, http.StatusForbidden, s.get(t, "/v1/keys", key).status)
	require.Eventually(t, func() bool { return s.head(t) == before+1 }, 10*time.Second, 10*time.Millisecond)
	s.index.Notify()
	r = s.get(t, "/v1/alerts?kind=invalid_key", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	list := r.object(t)["alerts"].([]any)
	require.Len(t, list, 1)
	a := list[0].(map[string]any)
	assert.Equal(t, "key_prefix:"+key[:10], a["subject"])
	assert.EqualValues(t, 3, a["figures"].(map[string]any)["count"])
	assert.NotContains(t, string(r.body), key, "the key itself never reaches an alert")

	r = s.get(t, "/v1/alerts/dead-letters", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "alr_x", r.object(t)["dead_letters"].([]any)[0].(map[string]any)["alert_id"])
}
