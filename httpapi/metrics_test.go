package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain/tenants"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

var _ metrics.KeySource = (*writeside.Ledger)(nil)

// scrape is one GET /metrics, parsed.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, s *stack) scrape {
	t.Helper()
	r := s.get(t, "/metrics", "") // no key: the endpoint is public
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	require.Contains(t, r.header.Get("Content-Type"), "text/plain")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	require.NoError(t, err, "exposition %s", r.body)
	return fams
}

// find returns the metric of family name whose labels include labels.
func (sc scrape) find(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	fam, ok := sc[name]
	require.True(t, ok, "no metric family %s", name)
next:
	for _, m := range fam.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	require.Failf(t, "no series", "%s%v", name, labels)
	return nil
}

// value is the value of a counter or gauge series.
func (sc scrape) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m := sc.find(t, name, labels)
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// hist returns a histogram's sample count and sum.
func (sc scrape) hist(t *testing.T, name string) (uint64, float64) {
	t.Helper()
	h := sc.find(t, name, nil).GetHistogram()
	require.NotNil(t, h, "%s is not a histogram", name)
	return h.GetSampleCount(), h.GetSampleSum()
}

func decisions(d, denial string) map[string]string {
	return map[string]string{"decision": d, "denial_type": denial}
}

// keyGauges reads custos_keys and custos_keys_expiring_14d as
// scope -> "active"/"expired"/"revoked"/"expiring" -> count.
func (sc scrape) keyGauges(t *testing.T) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, scope := range []string{"admin", "read", "evaluate"} {
		out[scope] = map[string]int{}
		for _, state := range []string{"active", "expired", "revoked"} {
			out[scope][state] = int(sc.value(t, "custos_keys", map[string]string{"scope": scope, "state": state}))
		}
		out[scope]["expiring"] = int(sc.value(t, "custos_keys_expiring_14d", map[string]string{"scope": scope}))
	}
	return out
}

// TestMetricsFollowWhatUsersDo scrapes /metrics without a key around
// evaluations, key changes, the passing of time and a verify, and checks
// that every custos metric moves as an operator would expect.
func TestMetricsFollowWhatUsersDo(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)

	before := scrapeMetrics(t, e.stack)
	assert.Contains(t, before, "go_goroutines", "Go collector registered")
	assert.NotContains(t, before, "custos_last_verify_valid", "no verify yet: no verdict, not a 0")
	assert.Equal(t, map[string]map[string]int{
		"admin":    {"active": 1, "expired": 0, "revoked": 0, "expiring": 0},
		"read":     {"active": 0, "expired": 0, "revoked": 0, "expiring": 0},
		"evaluate": {"active": 1, "expired": 0, "revoked": 0, "expiring": 0},
	}, before.keyGauges(t))
	for _, series := range []map[string]string{decisions("ALLOW", "none"), decisions("DENY", "policy"), decisions("DENY", "identity")} {
		assert.Zero(t, before.value(t, "custos_decisions_total", series), "%v starts at 0", series)
	}
	evals0, _ := before.hist(t, "custos_evaluate_duration_seconds")
	require.Zero(t, evals0)

	// Six decisions: three ALLOW, two policy denials, one identity denial.
	for i, body := range []string{
		evalBody("m-1", "crm", "medium", "loan_review"),
		evalBody("m-1", "crm", "low", "loan_review"),
		evalBody("m-2", "credit_bureau", "low", ""),
		evalBody("m-3", "hr_records", "low", ""),
		evalBody("m-4", "crm", "critical", "loan_review"),
		`{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"m-5"}`,
	} {
		r := e.evaluate(t, e.agentKey, body)
		require.Equal(t, http.StatusOK, r.status, "call %d: %s", i, r.body)
	}
	// A rejected evaluation (422) is no decision.
	require.Equal(t, http.StatusUnprocessableEntity, e.evaluate(t, e.agentKey, `{"agent_role":"loan_officer"}`).status)

	// Key changes: an expiring read key, a one-day evaluate key, an admin
	// key revoked, an evaluate key rotated with an hour of grace.
	e.mustCreate(t, `{"name":"m-read","scope":"read","expires_days":10}`)
	e.mustCreate(t, `{"name":"m-short","scope":"evaluate","expires_days":1}`)
	admin2 := e.mustCreate(t, `{"name":"m-admin2","scope":"admin"}`)
	require.Equal(t, http.StatusOK, e.del(t, "/v1/keys/"+admin2["key_id"].(string), e.admin).status)
	rot := e.mustCreate(t, `{"name":"m-rot","scope":"evaluate"}`)
	r := e.postJSON(t, "/v1/keys/"+rot["key_id"].(string)+"/rotate", e.admin, `{"grace_seconds":3600}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	after := scrapeMetrics(t, e.stack)
	assert.Equal(t, 3.0, after.value(t, "custos_decisions_total", decisions("ALLOW", "none")))
	assert.Equal(t, 2.0, after.value(t, "custos_decisions_total", decisions("DENY", "policy")))
	assert.Equal(t, 1.0, after.value(t, "custos_decisions_total", decisions("DENY", "identity")))
	assert.Equal(t, 0.0, after.value(t, "custos_decisions_total", decisions("DENY", "session")))
	evals, evalSum := after.hist(t, "custos_evaluate_duration_seconds")
	assert.EqualValues(t, 6, evals, "one latency sample per answered decision")
	assert.Positive(t, evalSum)
	assert.Equal(t, map[string]map[string]int{
		"admin":    {"active": 1, "expired": 0, "revoked": 1, "expiring": 0},
		"read":     {"active": 1, "expired": 0, "revoked": 0, "expiring": 1},
		"evaluate": {"active": 4, "expired": 0, "revoked": 0, "expiring": 1}, // old rotated key inside its grace
	}, after.keyGauges(t))

	// Every durable record went through a group commit since the store
	// opened: the batch sizes add up to the heads of the default chain and
	// of the system chain (the superadmin key, tenant default). The
	// observer runs just after the callers are answered, so the last
	// commit may lag a little.
	system, err := e.store.Head(tenants.SystemChain)
	require.NoError(t, err)
	require.Positive(t, system.Seq)
	var settled scrape
	require.Eventually(t, func() bool {
		settled = scrapeMetrics(t, e.stack)
		_, records := settled.hist(t, "custos_append_batch_records")
		head := settled.value(t, "custos_chain_head_seq", nil)
		return head == float64(e.head(t)) && records == head+float64(system.Seq)
	}, 5*time.Second, 10*time.Millisecond)
	commits, _ := settled.hist(t, "custos_fsync_duration_seconds")
	batches, _ := settled.hist(t, "custos_append_batch_records")
	assert.Positive(t, commits)
	assert.Equal(t, commits, batches, "one batch size and one fsync time per commit")

	// Two days later: the one-day key has expired, the grace has ended.
	e.clock.Advance(48 * time.Hour)
	later := scrapeMetrics(t, e.stack)
	assert.Equal(t, map[string]map[string]int{
		"admin":    {"active": 1, "expired": 0, "revoked": 1, "expiring": 0},
		"read":     {"active": 1, "expired": 0, "revoked": 0, "expiring": 1},
		"evaluate": {"active": 2, "expired": 1, "revoked": 1, "expiring": 0},
	}, later.keyGauges(t))

	// A verify leaves its verdict and time.
	r = e.get(t, "/v1/audit/verify", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	verified := scrapeMetrics(t, e.stack)
	assert.Equal(t, 1.0, verified.value(t, "custos_last_verify_valid", nil))
	assert.Equal(t, float64(e.clock.Now().Unix()), verified.value(t, "custos_last_verify_timestamp_seconds", nil))
}

// TestMetricsEndpointIsPublicAndOptional checks that /metrics ignores keys
// (like the probes) and answers 404 on a server without Metrics.
func TestMetricsEndpointIsPublicAndOptional(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for _, key := range []string{"", "garbage", s.admin} {
		r := s.get(t, "/metrics", key)
		assert.Equal(t, http.StatusOK, r.status, "key %q", key)
		assert.NotContains(t, string(r.body), s.admin)
	}

	api, err := httpapi.New(httpapi.Config{
		Tenants: s.reg,
		Verify:  func(context.Context, string) (verify.Report, error) { return verify.Report{Valid: true}, nil },
	})
	require.NoError(t, err)
	bare := newHTTPServer(t, api.Handler())
	resp, err := bare.Client().Get(bare.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	got := readResponse(t, resp)
	assert.Equal(t, http.StatusNotFound, got.status)
	assert.Equal(t, "Not found.", got.detail(t))
}

// TestMetricsRecordABrokenChain checks that a verify that finds the chain
// broken sets custos_last_verify_valid to 0.
func TestMetricsRecordABrokenChain(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := metrics.New()
	api, err := httpapi.New(httpapi.Config{
		Tenants: s.reg,
		Verify:  func(context.Context, string) (verify.Report, error) { return verify.Report{Valid: false}, nil },
		Metrics: m,
	})
	require.NoError(t, err)
	srv := newHTTPServer(t, api.Handler())
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/verify", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", s.admin)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, readResponse(t, resp).status)
	resp.Body.Close()

	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	var valid *float64
	for _, f := range fams {
		if f.GetName() == "custos_last_verify_valid" {
			valid = ptr(f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	require.NotNil(t, valid, "a verify leaves a verdict")
	assert.Zero(t, *valid)
}
