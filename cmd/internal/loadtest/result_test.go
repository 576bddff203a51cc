package loadtest_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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
