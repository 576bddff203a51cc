package loadtest_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/cmd/internal/loadtest"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{ms(3)}, 99, ms(3)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p95 of 1..100", hundred, 95, ms(95)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the max", hundred, 100, ms(100)},
		{"p0 is the min", hundred, 0, ms(1)},
		{"p50 of four rounds up the rank", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p99 of ten is the max", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"p90 of ten", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, loadtest.Percentile(tc.sorted, tc.p))
		})
	}
}

func TestSummarizeMergesUnsortedSamples(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	samples := make([]time.Duration, 1000)
	for i := range samples {
		samples[i] = time.Duration(i+1) * time.Microsecond
	}
	rng.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
	l := loadtest.Summarize(samples)
	assert.Equal(t, 500*time.Microsecond, l.P50)
	assert.Equal(t, 950*time.Microsecond, l.P95)
	assert.Equal(t, 990*time.Microsecond, l.P99)
	assert.Equal(t, 1000*time.Microsecond, l.Max)
	assert.Equal(t, 500500*time.Nanosecond, l.Mean)
	assert.Equal(t, loadtest.Latency{}, loadtest.Summarize(nil))
}

func TestResultReportsRatiosAndErrorRate(t *testing.T) {
	t.Parallel()
	base := loadtest.Stats{Decisions: 20000, Allow: 12000, Deny: 8000, Elapsed: 2 * time.Second,
		Latency: loadtest.Latency{P50: ms(1), P95: ms(2), P99: ms(4), Max: ms(9), Mean: ms(1)}}
	custos := loadtest.Stats{Decisions: 14000, Allow: 8400, Deny: 5600, Errors: 100, Elapsed: 2 * time.Second,
		Latency:     loadtest.Latency{P50: ms(2), P95: ms(5), P99: ms(10), Max: ms(30), Mean: ms(2)},
		FirstErrors: []loadtest.ErrorCount{{Message: "status 503: audit log unavailable", Count: 100}}}
	r := loadtest.Result{Server: "http://127.0.0.1:8080", Connections: 4, Duration: 2 * time.Second, RunID: "abc",
		Custos: custos, Baseline: &base, Ratios: &loadtest.Ratios{Throughput: 0.7, P99: 2.5},
		Machine: loadtest.Machine{CPUs: 2, GOOS: "linux", GOARCH: "amd64"}}
	assert.InDelta(t, 7000, custos.Throughput(), 1e-9)
	assert.InDelta(t, 100.0/14100, custos.ErrorRate(), 1e-12)
	assert.NoError(t, r.Err(), "0.7% errors is within the budget")
	r.Custos.Errors = 200
	assert.ErrorIs(t, r.Err(), loadtest.ErrTooManyErrors)

	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	for _, want := range []string{"decisions/s", "custos", "baseline", "10000", "7000",
		"throughput custos/baseline 0.70 (target >= 0.6) PASS", "p99 custos/baseline        2.50 (target <= 2.0) MISS",
		"status 503: audit log unavailable"} {
		assert.Contains(t, table.String(), want)
	}

	b, err := json.Marshal(r)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "http://127.0.0.1:8080", m["server"])
	assert.EqualValues(t, 4, m["connections"])
	assert.EqualValues(t, 2, m["duration_s"])
	assert.Equal(t, map[string]any{"cpus": 2.0, "goos": "linux", "goarch": "amd64"}, m["machine"])
	ratios := m["ratios"].(map[string]any)
	assert.Equal(t, 0.7, ratios["throughput"])
	assert.Equal(t, true, ratios["throughput_pass"])
	assert.Equal(t, 2.5, ratios["p99"])
	assert.Equal(t, false, ratios["p99_pass"])
	c := m["custos"].(map[string]any)
	assert.EqualValues(t, 7000, c["decisions_per_s"])
	assert.EqualValues(t, 10, c["latency_ms"].(map[string]any)["p99"])
	assert.EqualValues(t, 200, c["errors"])
	assert.NotNil(t, m["baseline"])
}

func TestSoakReportsPointsTrendsAndUnsent(t *testing.T) {
	t.Parallel()
	ivs := []loadtest.Interval{
		{Index: 0, Length: 10 * time.Second, Allow: 600, Deny: 400, P50: ms(1), P99: ms(9), Max: ms(12), RSS: 100 << 20},
		{Index: 1, Length: 10 * time.Second, Allow: 600, Deny: 400, P50: ms(1), P99: ms(4), Max: ms(5), RSS: 200 << 20},
		{Index: 2, Length: 10 * time.Second, Allow: 600, Deny: 400, Errors: 2, P50: ms(1), P99: ms(6), Max: ms(7), RSS: 220 << 20},
		{Index: 3, Length: 5 * time.Second, Allow: 300, Deny: 200, P50: ms(1), P99: ms(8), Max: ms(9), RSS: 240 << 20},
	}
	s := loadtest.SoakResult{Rate: 100, RateFraction: 0.5, Duration: 35 * time.Second, Interval: 10 * time.Second,
		ServerPID: 42, Intervals: ivs, Unsent: 7,
		Summary: loadtest.SoakSummary{Decisions: 3500, Errors: 2, Throughput: 100, WorstP99: ms(9),
			P99: loadtest.Trend{Points: 3, Growth: 0.4, Growing: true}, RSS: loadtest.Trend{Points: 3, Growth: 0.05},
			RSSFirst: 100 << 20, RSSLast: 240 << 20, RSSMax: 240 << 20}}
	r := loadtest.Result{Server: "http://127.0.0.1:1", Connections: 4, RunID: "abc", Soak: &s}

	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	for _, want := range []string{"soak of 35s", "soak: 35s at 100 requests/s (0.50 of the probe)", "server pid 42",
		"BEHIND: 7 requests", "p99 trend: GROWING (+40.0%", "RSS trend: flat (+5.0%", "first 100.0, last 240.0, max 240.0 MiB",
		"3500 decisions (100/s), 2 errors"} {
		assert.Contains(t, table.String(), want)
	}
	assert.NotContains(t, table.String(), "capacity probe", "no probe ran")

	var csvb bytes.Buffer
	require.NoError(t, s.WriteCSV(&csvb))
	lines := strings.Split(strings.TrimSpace(csvb.String()), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, "index,start_s,length_s,decisions_per_s,decisions,allow,deny,unexpected,errors,p50_ms,p99_ms,max_ms,rss_bytes", lines[0])
	assert.Equal(t, "3,30.000,5.000,100.000,500,300,200,0,0,1.000,8.000,9.000,251658240", lines[4])

	b, err := json.Marshal(r)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	soak := m["soak"].(map[string]any)
	assert.EqualValues(t, 7, soak["unsent"])
	assert.EqualValues(t, 35, soak["duration_s"])
	assert.Len(t, soak["intervals"], 4)
	sum := soak["summary"].(map[string]any)
	assert.Equal(t, true, sum["p99_trend_ms"].(map[string]any)["growing"])
	assert.EqualValues(t, 0.25, sum["p99_trend_ms"].(map[string]any)["threshold"])
	assert.Equal(t, false, sum["rss_trend_mib"].(map[string]any)["growing"])
	assert.NoError(t, r.Err(), "2 errors in 3502 are within the budget")
	_, hasSetup := m["setup"]
	assert.False(t, hasSetup, "no bulk setup, no setup object")
}
