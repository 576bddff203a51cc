package loadtest

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The JSON of a soak.
type (
	soakJSON struct {
		RatePerS     float64        `json:"rate_per_s"`
		RateFraction float64        `json:"rate_fraction"`
		DurationS    float64        `json:"duration_s"`
		IntervalS    float64        `json:"interval_s"`
		ServerPID    int            `json:"server_pid"`
		Late         int64          `json:"late"`
		Unsent       int64          `json:"unsent"`
		Intervals    []intervalJSON `json:"intervals"`
		Summary      summaryJSON    `json:"summary"`
		FirstErrors  []ErrorCount   `json:"first_errors"`
	}
	intervalJSON struct {
		Index         int     `json:"index"`
		StartS        float64 `json:"start_s"`
		LengthS       float64 `json:"length_s"`
		DecisionsPerS float64 `json:"decisions_per_s"`
		Decisions     int64   `json:"decisions"`
		Allow         int64   `json:"allow"`
		Deny          int64   `json:"deny"`
		Unexpected    int64   `json:"unexpected"`
		Errors        int64   `json:"errors"`
		P50MS         float64 `json:"p50_ms"`
		P99MS         float64 `json:"p99_ms"`
		MaxMS         float64 `json:"max_ms"`
		RSSBytes      int64   `json:"rss_bytes"`
	}
	summaryJSON struct {
		Decisions     int64     `json:"decisions"`
		Errors        int64     `json:"errors"`
		ErrorRate     float64   `json:"error_rate"`
		Unexpected    int64     `json:"unexpected"`
		DecisionsPerS float64   `json:"decisions_per_s"`
		WorstP99MS    float64   `json:"worst_p99_ms"`
		P99Trend      trendJSON `json:"p99_trend_ms"`
		RSSTrend      trendJSON `json:"rss_trend_mib"`
		RSSFirstBytes int64     `json:"rss_first_bytes"`
		RSSLastBytes  int64     `json:"rss_last_bytes"`
		RSSMaxBytes   int64     `json:"rss_max_bytes"`
	}
	trendJSON struct {
		Points       int     `json:"points"`
		SlopePerHour float64 `json:"slope_per_hour"`
		Median       float64 `json:"median"`
		Growth       float64 `json:"growth"`
		Threshold    float64 `json:"threshold"`
		Growing      bool    `json:"growing"`
	}
)

func newSoakJSON(s SoakResult) *soakJSON {
	out := &soakJSON{
		RatePerS: s.Rate, RateFraction: s.RateFraction, DurationS: s.Duration.Seconds(), IntervalS: s.Interval.Seconds(), ServerPID: s.ServerPID,
		Late: s.Late, Unsent: s.Unsent, Intervals: make([]intervalJSON, len(s.Intervals)), FirstErrors: s.FirstErrors,
	}
	if out.FirstErrors == nil {
		out.FirstErrors = []ErrorCount{}
	}
	for i, iv := range s.Intervals {
		out.Intervals[i] = intervalJSON{
			Index: iv.Index, StartS: (time.Duration(iv.Index) * s.Interval).Seconds(), LengthS: iv.Length.Seconds(),
			DecisionsPerS: iv.Throughput(), Decisions: iv.Decisions(), Allow: iv.Allow, Deny: iv.Deny,
			Unexpected: iv.Unexpected, Errors: iv.Errors,
			P50MS: ms(iv.P50), P99MS: ms(iv.P99), MaxMS: ms(iv.Max), RSSBytes: iv.RSS,
		}
	}
	m := s.Summary
	trend := func(t Trend, threshold float64) trendJSON {
		return trendJSON{Points: t.Points, SlopePerHour: t.SlopePerHour, Median: t.Median, Growth: t.Growth,
			Threshold: threshold, Growing: t.Growing}
	}
	out.Summary = summaryJSON{
		Decisions: m.Decisions, Errors: m.Errors, ErrorRate: m.ErrorRate(), Unexpected: m.Unexpected,
		DecisionsPerS: m.Throughput, WorstP99MS: ms(m.WorstP99),
		P99Trend: trend(m.P99, P99GrowthThreshold), RSSTrend: trend(m.RSS, RSSGrowthThreshold),
		RSSFirstBytes: m.RSSFirst, RSSLastBytes: m.RSSLast, RSSMaxBytes: m.RSSMax,
	}
	return out
}

// csvHeader is the first line of WriteCSV.
var csvHeader = []string{"index", "start_s", "length_s", "decisions_per_s", "decisions", "allow", "deny",
	"unexpected", "errors", "p50_ms", "p99_ms", "max_ms", "rss_bytes"}

// WriteCSV writes the intervals as CSV, one line each after a header
// (csvHeader); latencies in ms, RSS in bytes (0 unknown).
func (s SoakResult) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	d := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, iv := range newSoakJSON(s).Intervals {
		if err := cw.Write([]string{strconv.Itoa(iv.Index), f(iv.StartS), f(iv.LengthS), f(iv.DecisionsPerS),
			d(iv.Decisions), d(iv.Allow), d(iv.Deny), d(iv.Unexpected), d(iv.Errors),
			f(iv.P50MS), f(iv.P99MS), f(iv.MaxMS), d(iv.RSSBytes)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the intervals and the summary for a person.
func (s SoakResult) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %s at %.0f requests/s", s.Duration, s.Rate)
	if s.RateFraction > 0 {
		fmt.Fprintf(&b, " (%.2f of the probe)", s.RateFraction)
	}
	fmt.Fprintf(&b, ", a point every %s, server pid %d\n\n", s.Interval, s.ServerPID)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\tdecisions/s\tp50\tp99\tmax\terrors\tRSS MiB\t")
	for _, iv := range s.Intervals {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%d\t%s\t\n", (time.Duration(iv.Index+1) * s.Interval).String(),
			iv.Throughput(), fmtLatency(iv.P50), fmtLatency(iv.P99), fmtLatency(iv.Max), iv.Errors, mib(iv.RSS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	m := s.Summary
	fmt.Fprintf(&b, "\n%d decisions (%.0f/s), %d errors (%.2f%%), %d unexpected, worst interval p99 %s, %d late\n",
		m.Decisions, m.Throughput, m.Errors, 100*m.ErrorRate(), m.Unexpected, fmtLatency(m.WorstP99), s.Late)
	if s.Unsent > 0 {
		fmt.Fprintf(&b, "BEHIND: %d requests due before the end were not sent: the server did not keep up with %.0f/s\n",
			s.Unsent, s.Rate)
	}
	flag := func(t Trend) string {
		if t.Growing {
			return "GROWING"
		}
		return "flat"
	}
	fmt.Fprintf(&b, "p99 trend: %s (%+.1f%% over %d points, %+.3f ms/h, median %.2f ms; flagged above +%.0f%%)\n",
		flag(m.P99), 100*m.P99.Growth, m.P99.Points, m.P99.SlopePerHour, m.P99.Median, 100*P99GrowthThreshold)
	if m.RSSMax > 0 {
		fmt.Fprintf(&b, "RSS trend: %s (%+.1f%% over %d points, %+.1f MiB/h; first %s, last %s, max %s MiB; flagged above +%.0f%%)\n",
			flag(m.RSS), 100*m.RSS.Growth, m.RSS.Points, m.RSS.SlopePerHour, mib(m.RSSFirst), mib(m.RSSLast), mib(m.RSSMax),
			100*RSSGrowthThreshold)
	} else {
		b.WriteString("RSS: not read (server process not found; give --server-pid)\n")
	}
	for _, e := range s.FirstErrors {
		fmt.Fprintf(&b, "  %6d x %s\n", e.Count, e.Message)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64)
}
