package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets the custos figures are measured against, relative to the
// baseline, and the error rate above which a run fails.
const (
	// TargetThroughputRatio is the least custos/baseline decisions per second.
	TargetThroughputRatio = 0.6
	// TargetP99Ratio is the largest custos/baseline p99 latency.
	TargetP99Ratio = 2.0
	// MaxErrorRate is the largest share of errors (of decisions plus errors)
	// a phase may have without Result.Err reporting it.
	MaxErrorRate = 0.01
)

// ErrTooManyErrors is reported by Result.Err when a phase's error rate is
// above MaxErrorRate.
var ErrTooManyErrors = errors.New("loadtest: error rate above 1%")

// Result is what Run measured.
type Result struct {
	// Server is the base URL loaded.
	Server string
	// Connections, Duration and Warmup are the run's settings.
	Connections      int
	Duration, Warmup time.Duration
	// RunID names the run's keys and sessions.
	RunID string
	// Custos are the figures of the server.
	Custos Stats
	// Baseline are the figures of the in-process baseline; nil when skipped
	// or not reached.
	Baseline *Stats
	// Ratios compare Custos to Baseline; nil without Baseline.
	Ratios *Ratios
	// Machine describes where the run happened.
	Machine Machine
	// Setup are the figures of the bulk setup; nil without one.
	Setup *SetupStats
	// Soak is what the soak measured; nil without one. Custos then holds
	// the capacity probe (zero when the rate was given) and there is no
	// baseline.
	Soak *SoakResult
}

// Stats are the figures of one measured phase. Requests started during the
// warmup are not counted; requests started before the end of the phase are
// counted when they finish.
type Stats struct {
	// Decisions are the 200 answers with ALLOW or DENY: Allow + Deny.
	Decisions, Allow, Deny int64
	// Unexpected counts custos decisions that differ from what the mix
	// expects for the request (the policies were changed meanwhile, or the
	// policy semantics differ from the mix's reading). Zero for the baseline.
	Unexpected int64
	// Errors are other answers, transport errors and unreadable answers.
	Errors int64
	// Elapsed is the measured window: from the end of the warmup until the
	// last request finished.
	Elapsed time.Duration
	// Latency summarises the latencies of the decisions (errors excluded).
	Latency Latency
	// FirstErrors are the first distinct error messages, warmup included,
	// with how often each occurred.
	FirstErrors []ErrorCount
}

// Throughput returns decisions per second.
func (s Stats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Decisions) / s.Elapsed.Seconds()
}

// ErrorRate returns Errors / (Decisions + Errors), 0 without requests.
func (s Stats) ErrorRate() float64 {
	n := s.Decisions + s.Errors
	if n == 0 {
		return 0
	}
	return float64(s.Errors) / float64(n)
}

// ErrorCount is one distinct error message and how often it occurred.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// Latency summarises latency samples; percentiles are nearest-rank.
type Latency struct {
	P50, P95, P99, Max, Mean time.Duration
}

// Summarize sorts samples in place and returns their percentiles, maximum
// and mean; all zero without samples.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	return Latency{
		P50:  Percentile(samples, 50),
		P95:  Percentile(samples, 95),
		P99:  Percentile(samples, 99),
		Max:  samples[len(samples)-1],
		Mean: time.Duration(sum / float64(len(samples))),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest sample such that
// at least p% of the samples are at most it. It returns 0 for no samples;
// p <= 0 gives the minimum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Ratios compare custos to the baseline.
type Ratios struct {
	// Throughput is custos decisions/s divided by baseline decisions/s.
	Throughput float64
	// P99 is custos p99 latency divided by baseline p99 latency.
	P99 float64
}

// ThroughputPass reports whether Throughput meets TargetThroughputRatio.
func (r Ratios) ThroughputPass() bool { return r.Throughput >= TargetThroughputRatio }

// P99Pass reports whether P99 meets TargetP99Ratio.
func (r Ratios) P99Pass() bool { return r.P99 > 0 && r.P99 <= TargetP99Ratio }

func ratios(custos, baseline Stats) *Ratios {
	r := &Ratios{}
	if t := baseline.Throughput(); t > 0 {
		r.Throughput = custos.Throughput() / t
	}
	if baseline.Latency.P99 > 0 {
		r.P99 = float64(custos.Latency.P99) / float64(baseline.Latency.P99)
	}
	return r
}

// Machine describes the machine of the run.
type Machine struct {
	CPUs         int
	GOOS, GOARCH string
}

// Err returns ErrTooManyErrors, naming the phase and its rate, when a
// phase's error rate is above MaxErrorRate; nil otherwise.
func (r Result) Err() error {
	var errs []error
	check := func(name string, s Stats) {
		if s.ErrorRate() > MaxErrorRate {
			errs = append(errs, fmt.Errorf("%w: %s %.2f%% (%d of %d requests)",
				ErrTooManyErrors, name, 100*s.ErrorRate(), s.Errors, s.Errors+s.Decisions))
		}
	}
	check("custos", r.Custos)
	if r.Soak != nil {
		check("soak", Stats{Decisions: r.Soak.Summary.Decisions, Errors: r.Soak.Summary.Errors})
	}
	if r.Baseline != nil {
		check("baseline", *r.Baseline)
	}
	return errors.Join(errs...)
}

// The JSON report.
type (
	reportJSON struct {
		Server      string      `json:"server"`
		RunID       string      `json:"run_id"`
		Connections int         `json:"connections"`
		DurationS   float64     `json:"duration_s"`
		WarmupS     float64     `json:"warmup_s"`
		Custos      statsJSON   `json:"custos"`
		Baseline    *statsJSON  `json:"baseline"`
		Ratios      *ratiosJSON `json:"ratios"`
		Machine     machineJSON `json:"machine"`
		Setup       *setupJSON  `json:"setup,omitempty"`
		Soak        *soakJSON   `json:"soak,omitempty"`
	}
	setupJSON struct {
		Keys            int64        `json:"keys"`
		KeyErrors       int64        `json:"key_errors"`
		KeysElapsedS    float64      `json:"keys_elapsed_s"`
		KeysPerS        float64      `json:"keys_per_s"`
		Policies        int64        `json:"policies"`
		PolicyErrors    int64        `json:"policy_errors"`
		PoliciesElapsed float64      `json:"policies_elapsed_s"`
		PoliciesPerS    float64      `json:"policies_per_s"`
		FirstErrors     []ErrorCount `json:"first_errors"`
	}
	statsJSON struct {
		DecisionsPerS float64      `json:"decisions_per_s"`
		Decisions     int64        `json:"decisions"`
		Allow         int64        `json:"allow"`
		Deny          int64        `json:"deny"`
		Unexpected    int64        `json:"unexpected"`
		Errors        int64        `json:"errors"`
		ErrorRate     float64      `json:"error_rate"`
		ElapsedS      float64      `json:"elapsed_s"`
		LatencyMS     latencyJSON  `json:"latency_ms"`
		FirstErrors   []ErrorCount `json:"first_errors"`
	}
	latencyJSON struct {
		P50  float64 `json:"p50"`
		P95  float64 `json:"p95"`
		P99  float64 `json:"p99"`
		Max  float64 `json:"max"`
		Mean float64 `json:"mean"`
	}
	ratiosJSON struct {
		Throughput       float64 `json:"throughput"`
		ThroughputTarget float64 `json:"throughput_target"`
		ThroughputPass   bool    `json:"throughput_pass"`
		P99              float64 `json:"p99"`
		P99Target        float64 `json:"p99_target"`
		P99Pass          bool    `json:"p99_pass"`
	}
	machineJSON struct {
		CPUs   int    `json:"cpus"`
		GOOS   string `json:"goos"`
		GOARCH string `json:"goarch"`
	}
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newStatsJSON(s Stats) statsJSON {
	first := s.FirstErrors
	if first == nil {
		first = []ErrorCount{}
	}
	return statsJSON{
		DecisionsPerS: s.Throughput(), Decisions: s.Decisions, Allow: s.Allow, Deny: s.Deny,
		Unexpected: s.Unexpected, Errors: s.Errors, ErrorRate: s.ErrorRate(), ElapsedS: s.Elapsed.Seconds(),
		LatencyMS: latencyJSON{
			P50: ms(s.Latency.P50), P95: ms(s.Latency.P95), P99: ms(s.Latency.P99),
			Max: ms(s.Latency.Max), Mean: ms(s.Latency.Mean),
		},
		FirstErrors: first,
	}
}

// MarshalJSON writes the report: server, run_id, connections, duration_s,
// warmup_s, custos, baseline, ratios (null without a baseline) and machine.
// Latencies are in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	out := reportJSON{
		Server: r.Server, RunID: r.RunID, Connections: r.Connections,
		DurationS: r.Duration.Seconds(), WarmupS: r.Warmup.Seconds(),
		Custos:  newStatsJSON(r.Custos),
		Machine: machineJSON{CPUs: r.Machine.CPUs, GOOS: r.Machine.GOOS, GOARCH: r.Machine.GOARCH},
	}
	if r.Baseline != nil {
		b := newStatsJSON(*r.Baseline)
		out.Baseline = &b
	}
	if r.Ratios != nil {
		out.Ratios = &ratiosJSON{
			Throughput: r.Ratios.Throughput, ThroughputTarget: TargetThroughputRatio, ThroughputPass: r.Ratios.ThroughputPass(),
			P99: r.Ratios.P99, P99Target: TargetP99Ratio, P99Pass: r.Ratios.P99Pass(),
		}
	}
	if s := r.Setup; s != nil {
		out.Setup = &setupJSON{
			Keys: s.Keys, KeyErrors: s.KeyErrors, KeysElapsedS: s.KeysElapsed.Seconds(), KeysPerS: s.KeysPerS(),
			Policies: s.Policies, PolicyErrors: s.PolicyErrors, PoliciesElapsed: s.PoliciesElapsed.Seconds(),
			PoliciesPerS: s.PoliciesPerS(), FirstErrors: s.FirstErrors,
		}
		if out.Setup.FirstErrors == nil {
			out.Setup.FirstErrors = []ErrorCount{}
		}
	}
	if r.Soak != nil {
		out.Soak = newSoakJSON(*r.Soak)
	}
	return json.Marshal(out)
}

// WriteTable writes the short human report.
func (r Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	phase := fmt.Sprintf("%s measured after %s warmup", r.Duration, r.Warmup)
	if r.Soak != nil {
		phase = "soak of " + r.Soak.Duration.String()
	}
	fmt.Fprintf(&b, "custos loadtest: %s, %d connections, %s, run %s, %d CPUs %s/%s\n\n",
		r.Server, r.Connections, phase, r.RunID, r.Machine.CPUs, r.Machine.GOOS, r.Machine.GOARCH)
	if s := r.Setup; s != nil {
		b.WriteString("bulk setup:")
		if s.Keys+s.KeyErrors > 0 {
			fmt.Fprintf(&b, " %d keys (%d failed) in %s, %.0f keys/s;", s.Keys, s.KeyErrors,
				s.KeysElapsed.Round(time.Millisecond), s.KeysPerS())
		}
		if s.Policies+s.PolicyErrors > 0 {
			fmt.Fprintf(&b, " %d policies with agents (%d failed) in %s, %.0f/s;", s.Policies, s.PolicyErrors,
				s.PoliciesElapsed.Round(time.Millisecond), s.PoliciesPerS())
		}
		b.WriteString("\n")
		for _, e := range s.FirstErrors {
			fmt.Fprintf(&b, "  %6d x %s\n", e.Count, e.Message)
		}
		b.WriteString("\n")
	}
	if r.Soak != nil {
		if r.Custos.Decisions+r.Custos.Errors > 0 {
			fmt.Fprintf(&b, "capacity probe: %.0f decisions/s, p99 %s, %d errors\n",
				r.Custos.Throughput(), fmtLatency(r.Custos.Latency.P99), r.Custos.Errors)
		}
		_, err := io.WriteString(w, b.String())
		if err != nil {
			return err
		}
		return r.Soak.WriteTable(w)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tdecisions/s\tp50\tp95\tp99\tmax\tALLOW\tDENY\terrors\t")
	row := func(name string, s Stats) {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", name, s.Throughput(),
			fmtLatency(s.Latency.P50), fmtLatency(s.Latency.P95), fmtLatency(s.Latency.P99), fmtLatency(s.Latency.Max),
			s.Allow, s.Deny, s.Errors)
	}
	row("custos", r.Custos)
	if r.Baseline != nil {
		row("baseline", *r.Baseline)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Ratios != nil {
		fmt.Fprintf(&b, "\nthroughput custos/baseline %.2f (target >= %.1f) %s\n",
			r.Ratios.Throughput, TargetThroughputRatio, passOrMiss(r.Ratios.ThroughputPass()))
		fmt.Fprintf(&b, "p99 custos/baseline        %.2f (target <= %.1f) %s\n",
			r.Ratios.P99, TargetP99Ratio, passOrMiss(r.Ratios.P99Pass()))
	}
	if n := r.Custos.Decisions; n > 0 {
		fmt.Fprintf(&b, "custos ALLOW share %.1f%% (mix expects 60%%)", 100*float64(r.Custos.Allow)/float64(n))
		if r.Custos.Unexpected > 0 {
			fmt.Fprintf(&b, "; %d decisions differ from the mix's expectation", r.Custos.Unexpected)
		}
		b.WriteString("\n")
	}
	for _, p := range []struct {
		name string
		s    *Stats
	}{{"custos", &r.Custos}, {"baseline", r.Baseline}} {
		if p.s == nil || len(p.s.FirstErrors) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s errors (%.2f%%), first distinct:\n", p.name, 100*p.s.ErrorRate())
		for _, e := range p.s.FirstErrors {
			fmt.Fprintf(&b, "  %6d x %s\n", e.Count, e.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func passOrMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// fmtLatency prints d in ms with three significant digits or so.
func fmtLatency(d time.Duration) string {
	m := ms(d)
	switch {
	case m >= 100:
		return fmt.Sprintf("%.0fms", m)
	case m >= 10:
		return fmt.Sprintf("%.1fms", m)
	}
	return fmt.Sprintf("%.2fms", m)
}
