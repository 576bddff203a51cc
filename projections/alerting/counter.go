package alerting

import (
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain/alerts"
)

// slots is how many buckets a sliding window is cut into: counts are exact
// to a sixtieth of the window.
const slots = 60

// window counts events over a sliding window of fixed length, in slots
// buckets. Not safe for concurrent use.
type window struct {
	width  time.Duration // of one slot
	counts [slots]int64
	index  [slots]int64 // which slot number each bucket holds
	armed  bool         // below the threshold since the last alert
}

func newWindow(length time.Duration) *window {
	w := &window{width: max(length/slots, time.Millisecond), armed: true}
	for i := range w.index {
		w.index[i] = -1
	}
	return w
}

// add counts one event at t and returns the count over the window ending at
// t.
func (w *window) add(t time.Time) int64 {
	n := t.UnixNano() / int64(w.width)
	b := n % slots
	if w.index[b] != n {
		w.index[b], w.counts[b] = n, 0
	}
	w.counts[b]++
	return w.count(t)
}

// count returns the events in the window ending at t.
func (w *window) count(t time.Time) int64 {
	n := t.UnixNano() / int64(w.width)
	var sum int64
	for i := range slots {
		if idx := w.index[i]; idx > n-slots && idx <= n {
			sum += w.counts[i]
		}
	}
	return sum
}

// rateWindow counts one group's decisions and the DENYs among them for a
// denial_rate rule. Not safe for concurrent use.
type rateWindow struct {
	all, deny *window
	armed     bool // below the threshold since the last alert
}

func newRateWindow(length time.Duration) *rateWindow {
	return &rateWindow{all: newWindow(length), deny: newWindow(length), armed: true}
}

// rateReached reports whether all decisions, denied of them DENYs, reach
// rule r: at least r.MinDecisions decisions and a DENY share of at least
// r.Threshold percent.
func rateReached(r alerts.Rule, all, denied int64) bool {
	return all >= int64(r.MinDecisions) && all > 0 && denied*100 >= int64(r.Threshold)*all
}

// add counts one decision at t (denied: a DENY the rule counts) and
// returns the alert of a window that just reached rule r while armed,
// disarming it; below the rule it re-arms.
func (w *rateWindow) add(t time.Time, denied bool, r alerts.Rule, group string) (alerts.Raised, bool) {
	all := w.all.add(t)
	var n int64
	if denied {
		n = w.deny.add(t)
	} else {
		n = w.deny.count(t)
	}
	if !rateReached(r, all, n) {
		w.armed = true
		return alerts.Raised{}, false
	}
	if !w.armed {
		return alerts.Raised{}, false
	}
	w.armed = false
	length := time.Duration(r.Window)
	start := t.Add(-length)
	pct := n * 100 / all
	return alerts.Raised{
		RuleID: r.RuleID, Kind: r.Kind, Subject: r.GroupBy + ":" + group,
		WindowStart: &start, WindowEnd: &t,
		Figures: map[string]int64{"decisions": all, "denials": n, "percent": pct, "threshold": int64(r.Threshold),
			"min_decisions": int64(r.MinDecisions), "window_seconds": int64(length / time.Second)},
		Detail: fmt.Sprintf("%d of %d decisions (%d%%) for %s %s were DENY within %s (threshold %d%%, at least %d decisions).",
			n, all, pct, r.GroupBy, group, length, r.Threshold, r.MinDecisions),
	}, true
}
