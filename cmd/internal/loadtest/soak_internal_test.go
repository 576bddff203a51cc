package loadtest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// msd returns n milliseconds.
func msd(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

var t0 = time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)

func TestPacerSpacesSlotsAtTheRate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rate float64
		slot int64
		want time.Duration // after start
	}{
		{"first slot at the start", 1000, 0, 0},
		{"1000/s: 1 ms apart", 1000, 1, time.Millisecond},
		{"1000/s: slot 1000 after a second", 1000, 1000, time.Second},
		{"fractional rate", 3, 1, 333333333},
		{"fractional rate, whole seconds exact", 3, 3, time.Second},
		{"slow rate", 0.5, 1, 2 * time.Second},
		{"fast rate", 250_000, 250_000, time.Second},
		{"half an hour at 12.5k/s", 12_500, 12_500 * 1800, 30 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &pacer{start: t0, rate: tc.rate}
			assert.Equal(t, tc.want, p.due(tc.slot).Sub(t0))
		})
	}
}

func TestPacerCountsTheSlotsDueBeforeATime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		rate  float64
		after time.Duration
		want  int64
	}{
		{"at the start", 1000, 0, 0},
		{"before the start", 1000, -time.Second, 0},
		{"just after the start", 1000, 1, 1},
		{"a second at 1000/s", 1000, time.Second, 1000},
		{"a second and a nanosecond", 1000, time.Second + 1, 1001},
		{"fractional rate", 3, time.Second, 3},
		{"fractional rate, between slots", 3, 1500 * time.Millisecond, 5},
		{"slow rate", 0.5, 3 * time.Second, 2},
		{"half an hour at 7080/s", 7080, 30 * time.Minute, 7080 * 1800},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &pacer{start: t0, rate: tc.rate}
			n := p.slotsBefore(t0.Add(tc.after))
			assert.Equal(t, tc.want, n)
			if n > 0 {
				assert.True(t, p.due(n-1).Before(t0.Add(tc.after)))
			}
			assert.False(t, p.due(n).Before(t0.Add(tc.after)))
		})
	}
}

func TestPacerHandsOutEachSlotOnceAcrossGoroutines(t *testing.T) {
	t.Parallel()
	p := &pacer{start: t0, rate: 100}
	end := t0.Add(10 * time.Second) // 1000 slots
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				k, due := p.take()
				if !due.Before(end) {
					return
				}
				mu.Lock()
				seen[k] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 1000, "exactly rate x duration slots are due before the end")
	for k := range int64(1000) {
		assert.True(t, seen[k], "slot %d", k)
	}
}

func TestIntervalRecorderCountsByFinishTime(t *testing.T) {
	t.Parallel()
	type req struct {
		at       time.Duration // after start
		lat      time.Duration
		decision string
		unexp    bool
		failed   bool
	}
	cases := []struct {
		name   string
		length time.Duration
		reqs   []req
		rss    map[int]int64
		want   []Interval
	}{
		{
			name: "two full intervals", length: 20 * time.Second,
			reqs: []req{
				{at: 0, lat: msd(1), decision: decisionAllow},
				{at: 9999 * time.Millisecond, lat: msd(3), decision: decisionDeny},
				{at: 10 * time.Second, lat: msd(2), decision: decisionAllow, unexp: true},
				{at: 15 * time.Second, failed: true},
			},
			rss: map[int]int64{0: 100 << 20, 1: 101 << 20},
			want: []Interval{
				{Index: 0, Length: 10 * time.Second, Allow: 1, Deny: 1, P50: msd(1), P99: msd(3), Max: msd(3), RSS: 100 << 20},
				{Index: 1, Length: 10 * time.Second, Allow: 1, Unexpected: 1, Errors: 1, P50: msd(2), P99: msd(2), Max: msd(2), RSS: 101 << 20},
			},
		},
		{
			name: "a last partial interval, answers after the end count in it", length: 25 * time.Second,
			reqs: []req{
				{at: 24 * time.Second, lat: msd(5), decision: decisionAllow},
				{at: 26 * time.Second, lat: msd(7), decision: decisionDeny},
			},
			want: []Interval{
				{Index: 0, Length: 10 * time.Second},
				{Index: 1, Length: 10 * time.Second},
				{Index: 2, Length: 5 * time.Second, Allow: 1, Deny: 1, P50: msd(5), P99: msd(7), Max: msd(7)},
			},
		},
		{
			name: "an empty interval in the middle is a zero point", length: 30 * time.Second,
			reqs: []req{{at: time.Second, lat: msd(1), decision: decisionAllow}, {at: 21 * time.Second, lat: msd(1), decision: decisionAllow}},
			want: []Interval{
				{Index: 0, Length: 10 * time.Second, Allow: 1, P50: msd(1), P99: msd(1), Max: msd(1)},
				{Index: 1, Length: 10 * time.Second},
				{Index: 2, Length: 10 * time.Second, Allow: 1, P50: msd(1), P99: msd(1), Max: msd(1)},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newIntervalRecorder(t0, 10*time.Second, tc.length)
			for _, q := range tc.reqs {
				r.add(t0.Add(q.at), q.lat, q.decision, q.unexp, q.failed)
			}
			for i, rss := range tc.rss {
				r.setRSS(i, rss)
			}
			got := r.closeThrough(100)
			assert.Equal(t, tc.want, got)
			all, late := r.all()
			assert.Equal(t, tc.want, all)
			assert.Zero(t, late)
		})
	}
}

func TestIntervalRecorderClosesInStepsAndCountsLateAnswers(t *testing.T) {
	t.Parallel()
	r := newIntervalRecorder(t0, time.Second, 3*time.Second)
	assert.Empty(t, r.closeThrough(-1), "nothing to close before the first tick")
	r.add(t0.Add(500*time.Millisecond), msd(1), decisionAllow, false, false)
	r.setRSS(0, 7)
	first := r.closeThrough(0)
	require.Len(t, first, 1)
	assert.EqualValues(t, 1, first[0].Allow)
	assert.EqualValues(t, 7, first[0].RSS)
	assert.Empty(t, r.closeThrough(0), "closing twice returns nothing new")

	// An answer for the closed interval 0 arrives: it counts in interval 1.
	r.add(t0.Add(900*time.Millisecond), msd(2), decisionDeny, false, false)
	r.setRSS(0, 99) // ignored: interval 0 is closed
	rest := r.closeThrough(2)
	require.Len(t, rest, 2)
	assert.EqualValues(t, 1, rest[0].Deny)
	all, late := r.all()
	require.Len(t, all, 3)
	assert.EqualValues(t, 7, all[0].RSS)
	assert.EqualValues(t, 1, late)

	r.add(t0.Add(time.Hour), msd(1), decisionAllow, false, false)
	_, late = r.all()
	assert.EqualValues(t, 2, late, "after every interval is closed, answers are only counted late")
}

func TestFitTrendFlagsGrowthNotNoise(t *testing.T) {
	t.Parallel()
	xs := func(n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = float64(10 * (i + 1))
		}
		return out
	}
	cases := []struct {
		name       string
		xs, ys     []float64
		threshold  float64
		growing    bool
		growth     float64
		slopePerH  float64
		wantMedian float64
	}{
		{"flat", xs(6), []float64{5, 5, 5, 5, 5, 5}, 0.25, false, 0, 0, 5},
		{"noisy flat", xs(8), []float64{5, 6, 4, 5, 6, 4, 5, 5}, 0.25, false, 0, 0, 5},
		{"one spike at the end is not a trend", xs(6), []float64{5, 5, 5, 5, 5, 50}, 0.25, false, 0, 0, 5},
		{"one spike in the middle", xs(7), []float64{5, 5, 5, 40, 5, 5, 5}, 0.25, false, 0, 0, 5},
		// 1 per 10 s over 50 s = +5 on a median of 7.5: +67%.
		{"steady growth", xs(6), []float64{5, 6, 7, 8, 9, 10}, 0.25, true, 5 / 7.5, 360, 7.5},
		{"slow growth under the threshold", xs(6), []float64{100, 101, 102, 103, 104, 105}, 0.10, false, 5 / 102.5, 360, 102.5},
		{"shrinking is not growing", xs(5), []float64{10, 9, 8, 7, 6}, 0.10, false, -4.0 / 8, -360, 8},
		{"two points are never flagged", xs(2), []float64{1, 100}, 0.10, false, 99 / 50.5, 35640, 50.5},
		{"one point", xs(1), []float64{3}, 0.10, false, 0, 0, 3},
		{"none", nil, nil, 0.10, false, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := fitTrend(tc.xs, tc.ys, tc.threshold)
			assert.Equal(t, tc.growing, got.Growing)
			assert.Equal(t, len(tc.xs), got.Points)
			assert.InDelta(t, tc.growth, got.Growth, 1e-9)
			assert.InDelta(t, tc.slopePerH, got.SlopePerHour, 1e-6)
			assert.InDelta(t, tc.wantMedian, got.Median, 1e-9)
		})
	}
}

func TestSummarizeLeavesWarmupOutOfTheTrends(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		p99, rss      []float64 // ms, MiB per interval
		p99G, rssG    bool
		points, first int
	}{
		{"RSS climbs in the first interval only", []float64{9, 3, 3, 3, 3, 3}, []float64{40, 120, 121, 120, 121, 121}, false, false, 5, 1},
		{"RSS leaks", []float64{3, 3, 3, 3, 3, 3}, []float64{100, 110, 120, 130, 140, 150}, false, true, 5, 1},
		{"p99 grows", []float64{3, 3, 4, 5, 6, 7}, []float64{100, 100, 100, 100, 100, 100}, true, false, 5, 1},
		{"a tenth of twenty is two", make([]float64, 20), make([]float64, 20), false, false, 18, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ivs := make([]Interval, len(tc.p99))
			for i := range ivs {
				ivs[i] = Interval{Index: i, Length: 10 * time.Second, Allow: 100, Deny: 50,
					P99: msd(tc.p99[i] + 1), RSS: int64((tc.rss[i] + 1) * (1 << 20))}
			}
			s := summarize(ivs)
			assert.Equal(t, tc.first, steadyFrom(len(ivs)))
			assert.Equal(t, tc.p99G, s.P99.Growing, "p99 %+v", s.P99)
			assert.Equal(t, tc.rssG, s.RSS.Growing, "rss %+v", s.RSS)
			assert.Equal(t, tc.points, s.P99.Points)
			assert.EqualValues(t, 150*len(ivs), s.Decisions)
			assert.InDelta(t, 15, s.Throughput, 1e-9)
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, status string
		want         int64
		ok           bool
	}{
		{"a status file", "Name:\tcustos\nVmPeak:\t  900 kB\nVmRSS:\t  105432 kB\nThreads:\t9\n", 105432 << 10, true},
		{"no VmRSS (a kernel thread)", "Name:\tkthreadd\nThreads:\t1\n", 0, false},
		{"another unit", "VmRSS:\t 5 MB\n", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseVmRSS([]byte(tc.status))
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestListenerInodesReadsProcNetTCP(t *testing.T) {
	t.Parallel()
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:46A7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:46A7 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
`
	assert.Equal(t, []string{"4242"}, listenerInodes([]byte(table), 18087), "listening only, not the accepted connection")
	assert.Equal(t, []string{"555"}, listenerInodes([]byte(table), 8080))
	assert.Empty(t, listenerInodes([]byte(table), 9999))
}

func TestTruncateAtKeepsTheIntervalsReached(t *testing.T) {
	t.Parallel()
	full := []Interval{{Index: 0, Length: 10 * time.Second}, {Index: 1, Length: 10 * time.Second}, {Index: 2, Length: 5 * time.Second}}
	cases := []struct {
		name    string
		elapsed time.Duration
		lengths []time.Duration
	}{
		{"not interrupted", 25 * time.Second, []time.Duration{10 * time.Second, 10 * time.Second, 5 * time.Second}},
		{"after the end", time.Minute, []time.Duration{10 * time.Second, 10 * time.Second, 5 * time.Second}},
		{"in the second", 13 * time.Second, []time.Duration{10 * time.Second, 3 * time.Second}},
		{"on a boundary", 10 * time.Second, []time.Duration{10 * time.Second}},
		{"at once", 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []time.Duration
			for _, iv := range truncateAt(full, 10*time.Second, tc.elapsed) {
				got = append(got, iv.Length)
			}
			assert.Equal(t, tc.lengths, got)
		})
	}
}
