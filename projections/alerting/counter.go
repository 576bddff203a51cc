package alerting

import "time"

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
