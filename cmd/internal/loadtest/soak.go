package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Thresholds of the soak's trend flags: the robust fit of the steady
// intervals' p99 (or RSS) may grow by at most this share of its median over
// the soak.
const (
	// P99GrowthThreshold flags a growing p99.
	P99GrowthThreshold = 0.25
	// RSSGrowthThreshold flags a growing RSS.
	RSSGrowthThreshold = 0.10
)

// SoakResult is what a soak measured.
type SoakResult struct {
	// Rate is the request rate the soak was paced at, per second.
	Rate float64
	// RateFraction is the share of the probe's throughput Rate is; zero
	// when Rate was given.
	RateFraction float64
	// Duration is the soak's length (Config.Soak).
	Duration time.Duration
	// Interval is the length of each point.
	Interval time.Duration
	// ServerPID is the process whose RSS was read; 0 when none was found.
	ServerPID int
	// Intervals are the points, in order.
	Intervals []Interval
	// Late counts requests that finished after their interval was closed;
	// they are counted in the first open one.
	Late int64
	// Unsent counts the slots due before the end that were not sent by
	// 100 ms after it: the server fell behind the rate by this many
	// requests. The soak does not send them later, so it lasts as long as
	// asked.
	Unsent int64
	// FirstErrors are the first distinct error messages, with counts.
	FirstErrors []ErrorCount
	// Summary sums the intervals up and flags trends.
	Summary SoakSummary
}

// Interval is one point of a soak: the requests that finished in it.
type Interval struct {
	// Index is the interval's number from 0; it starts at Index*Interval
	// after the soak's start.
	Index int
	// Length is the interval's length: the soak's interval, or less for a
	// last, partial one.
	Length time.Duration
	// Allow, Deny, Unexpected and Errors are counted as in Stats.
	Allow, Deny, Unexpected, Errors int64
	// P50, P99 and Max are the latencies of the interval's decisions,
	// measured from when each request was due, not when it was sent: a
	// server that falls behind the rate shows as growing latency.
	P50, P99, Max time.Duration
	// RSS is the server's VmRSS in bytes at the interval's end; 0 unknown.
	RSS int64
}

// Decisions returns Allow + Deny.
func (iv Interval) Decisions() int64 { return iv.Allow + iv.Deny }

// Throughput returns decisions per second of the interval.
func (iv Interval) Throughput() float64 { return perSecond(iv.Decisions(), iv.Length) }

// SoakSummary sums a soak up.
type SoakSummary struct {
	// Decisions, Errors and Unexpected are the totals.
	Decisions, Errors, Unexpected int64
	// Throughput is decisions per second over the whole soak.
	Throughput float64
	// WorstP99 is the largest interval p99.
	WorstP99 time.Duration
	// P99 and RSS are the trends of the intervals' p99 (ms) and RSS (MiB),
	// the first tenth of the intervals (at least one of three or more)
	// left out as warmup.
	P99, RSS Trend
	// RSSFirst, RSSLast and RSSMax are in bytes; 0 unknown.
	RSSFirst, RSSLast, RSSMax int64
}

// ErrorRate returns Errors / (Decisions + Errors), 0 without requests.
func (s SoakSummary) ErrorRate() float64 {
	return Stats{Decisions: s.Decisions, Errors: s.Errors}.ErrorRate()
}

// Trend is a robust straight-line fit of a series over time.
type Trend struct {
	// Points is the number of points fitted.
	Points int
	// SlopePerHour is the Theil-Sen slope: the median of the slopes
	// between every two points, in the series' unit per hour.
	SlopePerHour float64
	// Median is the median of the points.
	Median float64
	// Growth is the fitted change over the fitted span divided by Median.
	Growth float64
	// Growing is Growth above the series' threshold.
	Growing bool
}

// fitTrend fits ys at times xs (seconds) and flags growth above
// threshold. Fewer than three points are never flagged.
func fitTrend(xs, ys []float64, threshold float64) Trend {
	t := Trend{Points: len(xs)}
	if len(xs) < 2 || len(xs) != len(ys) {
		if len(ys) == 1 {
			t.Median = ys[0]
		}
		return t
	}
	slopes := make([]float64, 0, len(xs)*(len(xs)-1)/2)
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if dx := xs[j] - xs[i]; dx != 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dx)
			}
		}
	}
	slope := median(slopes)
	t.Median = median(slices.Clone(ys))
	t.SlopePerHour = slope * 3600
	if t.Median > 0 {
		t.Growth = slope * (xs[len(xs)-1] - xs[0]) / t.Median
	}
	t.Growing = len(xs) >= 3 && t.Growth > threshold
	return t
}

// median sorts v in place and returns its median; 0 when empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// steadyFrom returns the index of the first interval the trends fit: the
// first tenth of n is warmup, at least one interval of three or more.
func steadyFrom(n int) int {
	skip := n / 10
	if skip == 0 && n >= 3 {
		skip = 1
	}
	return skip
}

// summarize sums intervals up.
func summarize(intervals []Interval) SoakSummary {
	var s SoakSummary
	var length time.Duration
	for _, iv := range intervals {
		s.Decisions += iv.Decisions()
		s.Errors += iv.Errors
		s.Unexpected += iv.Unexpected
		s.WorstP99 = max(s.WorstP99, iv.P99)
		length += iv.Length
		if iv.RSS > 0 {
			if s.RSSFirst == 0 {
				s.RSSFirst = iv.RSS
			}
			s.RSSLast = iv.RSS
			s.RSSMax = max(s.RSSMax, iv.RSS)
		}
	}
	s.Throughput = perSecond(s.Decisions, length)
	var px, py, rx, ry []float64
	for _, iv := range intervals[steadyFrom(len(intervals)):] {
		at := (time.Duration(iv.Index)*intervalOf(intervals) + iv.Length).Seconds() // the interval's end
		if iv.Decisions() > 0 {
			px, py = append(px, at), append(py, ms(iv.P99))
		}
		if iv.RSS > 0 {
			rx, ry = append(rx, at), append(ry, float64(iv.RSS)/(1<<20))
		}
	}
	s.P99 = fitTrend(px, py, P99GrowthThreshold)
	s.RSS = fitTrend(rx, ry, RSSGrowthThreshold)
	return s
}

// intervalOf returns the full interval length of a series: the first's.
func intervalOf(intervals []Interval) time.Duration {
	if len(intervals) == 0 {
		return 0
	}
	return intervals[0].Length
}

// pacer hands out request slots at a fixed rate: slot k is due at start +
// k/rate. Slots are taken in order by any number of goroutines; a slot
// taken late is sent at once (the load catches up, as a steady stream of
// users would), and its latency counts from when it was due.
type pacer struct {
	start time.Time
	rate  float64
	next  atomic.Int64
}

// due returns when slot k is due.
func (p *pacer) due(k int64) time.Time {
	return p.start.Add(time.Duration(float64(k) / p.rate * float64(time.Second)))
}

// slotsBefore returns how many slots are due before t.
func (p *pacer) slotsBefore(t time.Time) int64 {
	if !t.After(p.start) {
		return 0
	}
	n := int64(math.Ceil(t.Sub(p.start).Seconds() * p.rate))
	for n > 0 && !p.due(n-1).Before(t) {
		n--
	}
	for p.due(n).Before(t) {
		n++
	}
	return n
}

// take returns the next slot and when it is due.
func (p *pacer) take() (int64, time.Time) {
	k := p.next.Add(1) - 1
	return k, p.due(k)
}

// intervalRecorder counts finished requests into intervals of a soak that
// starts at start and lasts length, by when they finished. It is safe for
// concurrent use.
type intervalRecorder struct {
	start  time.Time
	every  time.Duration
	length time.Duration
	n      int // intervals in all

	mu      sync.Mutex
	open    map[int]*openInterval
	closed  int // intervals below closed are in out
	late    int64
	out     []Interval
	pending map[int]int64 // RSS of intervals not yet closed
}

type openInterval struct {
	samples                         []time.Duration
	allow, deny, unexpected, errors int64
}

func newIntervalRecorder(start time.Time, every, length time.Duration) *intervalRecorder {
	n := int((length + every - 1) / every)
	return &intervalRecorder{start: start, every: every, length: length, n: max(n, 1),
		open: make(map[int]*openInterval), pending: make(map[int]int64)}
}

// index returns the interval a request that finished at done counts in:
// the last one for requests that finished after the soak.
func (r *intervalRecorder) index(done time.Time) int {
	i := int(done.Sub(r.start) / r.every)
	return min(max(i, 0), r.n-1)
}

// add counts one request that finished at done: a decision (ALLOW or DENY,
// unexpected or not) with its latency, or an error.
func (r *intervalRecorder) add(done time.Time, lat time.Duration, decision string, unexpected, failed bool) {
	i := r.index(done)
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < r.closed {
		r.late++
		i = r.closed
		if i >= r.n {
			return
		}
	}
	iv := r.open[i]
	if iv == nil {
		iv = &openInterval{}
		r.open[i] = iv
	}
	switch {
	case failed:
		iv.errors++
		return
	case decision == decisionAllow:
		iv.allow++
	case decision == decisionDeny:
		iv.deny++
	}
	if unexpected {
		iv.unexpected++
	}
	iv.samples = append(iv.samples, lat)
}

// setRSS records the server's RSS at the end of interval i.
func (r *intervalRecorder) setRSS(i int, rss int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= r.closed {
		r.pending[i] = rss
	}
}

// closeThrough closes every interval up to and including i and returns the
// ones it closed, in order.
func (r *intervalRecorder) closeThrough(i int) []Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	i = min(i, r.n-1)
	from := len(r.out)
	for ; r.closed <= i; r.closed++ {
		k := r.closed
		iv := Interval{Index: k, Length: min(r.every, r.length-time.Duration(k)*r.every), RSS: r.pending[k]}
		if o := r.open[k]; o != nil {
			lat := Summarize(o.samples)
			iv.Allow, iv.Deny, iv.Unexpected, iv.Errors = o.allow, o.deny, o.unexpected, o.errors
			iv.P50, iv.P99, iv.Max = lat.P50, lat.P99, lat.Max
		}
		delete(r.open, k)
		delete(r.pending, k)
		r.out = append(r.out, iv)
	}
	return slices.Clone(r.out[from:])
}

// all returns every closed interval and the late count.
func (r *intervalRecorder) all() ([]Interval, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.out), r.late
}

// readRSS returns the VmRSS of process pid in bytes, from
// /proc/<pid>/status.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// parseVmRSS reads the VmRSS line of a /proc/<pid>/status file.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// listenerInodes returns the socket inodes listening on port in a
// /proc/net/tcp or tcp6 table.
func listenerInodes(table []byte, port int) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			out = append(out, f[9])
		}
	}
	return out
}

// findListenerPID returns the process listening on TCP port, searching
// /proc/net/tcp{,6} and the file descriptors of the processes this user
// may read.
func findListenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, t := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if b, err := os.ReadFile(t); err == nil {
			for _, in := range listenerInodes(b, port) {
				inodes["socket:["+in+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listening socket on port %d in /proc/net/tcp{,6}", port)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // another user's process
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no readable process holds the socket listening on port %d", port)
}

// soak paces conns at rate for c.Soak and records an interval every
// c.SoakInterval, with the RSS of pid (0: none) at each interval's end.
func (c Config) soak(ctx context.Context, url string, conns []conn, rate float64, pid int) SoakResult {
	client := newClient(len(conns))
	defer client.CloseIdleConnections()
	errs := newErrorLog()
	start := time.Now()
	end := start.Add(c.Soak)
	p := &pacer{start: start, rate: rate}
	rec := newIntervalRecorder(start, c.SoakInterval, c.Soak)

	sampleRSS := func(i int) {
		if pid == 0 {
			return
		}
		rss, err := readRSS(pid)
		if err != nil {
			c.Logger.Warn("could not read the server's RSS", "pid", pid, "err", err)
			return
		}
		rec.setRSS(i, rss)
	}
	logged := func(ivs []Interval) {
		for _, iv := range ivs {
			c.Logger.Info("soak", "interval", iv.Index, "decisions_per_s", int(iv.Throughput()),
				"p50_ms", ms(iv.P50), "p99_ms", ms(iv.P99), "errors", iv.Errors, "rss_mib", iv.RSS>>20)
		}
	}

	samplerCtx, stopSampler := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for i := 0; i < rec.n; i++ {
			t := time.NewTimer(time.Until(start.Add(time.Duration(i+1) * c.SoakInterval)))
			select {
			case <-samplerCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			sampleRSS(i)
			logged(rec.closeThrough(i - 1)) // interval i may still get its last answers
		}
	})

	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range conns {
		w := &worker{}
		rng := mathrand.New(mathrand.NewPCG(uint64(start.UnixNano()), uint64(i)))
		wg.Go(func() { w.paced(ctx, client, url, conns[i], rng, p, end, rec, errs, &sent) })
	}
	wg.Wait()
	stopSampler()
	sampler.Wait()
	last := rec.n - 1
	rec.mu.Lock()
	_, have := rec.pending[last]
	rec.mu.Unlock()
	if !have {
		sampleRSS(last)
	}
	logged(rec.closeThrough(last))
	out := SoakResult{Rate: rate, Duration: c.Soak, Interval: c.SoakInterval, ServerPID: pid, FirstErrors: errs.first()}
	out.Intervals, out.Late = rec.all()
	if ctx.Err() != nil { // interrupted: the intervals not reached are no points
		out.Intervals = truncateAt(out.Intervals, c.SoakInterval, time.Since(start))
	}
	out.Unsent = max(p.slotsBefore(end)-sent.Load(), 0)
	out.Summary = summarize(out.Intervals)
	return out
}

// soakEndGrace is how late after the end of a soak a slot due before it is
// still sent: a timer that fires a little late is not a server behind.
const soakEndGrace = 100 * time.Millisecond

// truncateAt keeps the intervals that started before elapsed and shortens
// the last one to end there.
func truncateAt(intervals []Interval, every, elapsed time.Duration) []Interval {
	var out []Interval
	for _, iv := range intervals {
		from := time.Duration(iv.Index) * every
		if from >= elapsed {
			break
		}
		iv.Length = min(iv.Length, elapsed-from)
		out = append(out, iv)
	}
	return out
}

// paced is the worker loop of a soak: take a slot, wait until it is due,
// send, record by finish time.
func (w *worker) paced(ctx context.Context, client *http.Client, url string, cn conn, rng *mathrand.Rand,
	p *pacer, end time.Time, rec *intervalRecorder, errs *errorLog, sent *atomic.Int64) {
	w.contentType = []string{"application/json"}
	w.apiKeyHeader = []string{cn.key}
	for ctx.Err() == nil {
		_, due := p.take()
		if !due.Before(end) {
			return
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if !time.Now().Before(end.Add(soakEndGrace)) {
			return // behind the rate at the end: the rest is Unsent
		}
		sent.Add(1)
		b := cn.bodies[rng.IntN(len(cn.bodies))]
		decision, err := w.do(ctx, client, url, b.json)
		done := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			errs.add(err.Error())
			rec.add(done, 0, "", false, true)
			continue
		}
		rec.add(done, done.Sub(due), decision, decision != b.want, false)
	}
}
