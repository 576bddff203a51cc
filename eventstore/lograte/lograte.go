// Package lograte keeps repeated log lines from flooding the log: a Limiter
// passes the first line of each kind, then at most one per interval, and
// that one says how many like it were dropped in between. A disk that fails
// makes Pebble and the projections retry the same failing operation many
// times a second; the log should say so once a second, not thousands of
// times.
//
// A Limiter is safe for concurrent use. Its zero value is not usable; call
// New.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the interval New uses for a non-positive every.
const DefaultEvery = 10 * time.Second

// maxKeys bounds the kinds a Limiter remembers; past it, kinds not seen for
// an interval are forgotten.
const maxKeys = 1024

// Limiter passes one event per key and interval and counts the others.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*entry
}

type entry struct {
	last       time.Time // when the last passed event was
	suppressed int       // events dropped since then
}

// New returns a Limiter that passes one event per key every interval
// (DefaultEvery when every <= 0).
func New(every time.Duration) *Limiter {
	return NewWithClock(every, time.Now)
}

// NewWithClock is New with a clock, for tests.
func NewWithClock(every time.Duration, now func() time.Time) *Limiter {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{every: every, now: now, seen: map[string]*entry{}}
}

// Allow reports whether an event of kind key may be logged now, and if so
// how many events of that kind were dropped since the last one passed.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.seen[key]
	if e == nil {
		if len(l.seen) >= maxKeys {
			l.forget(now)
		}
		l.seen[key] = &entry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	suppressed, e.suppressed, e.last = e.suppressed, 0, now
	return true, suppressed
}

// forget drops the kinds not seen for an interval, or all when none is
// that old. Called with mu held.
func (l *Limiter) forget(now time.Time) {
	for k, e := range l.seen {
		if now.Sub(e.last) >= l.every {
			delete(l.seen, k)
		}
	}
	if len(l.seen) >= maxKeys {
		clear(l.seen)
	}
}

// Log logs msg with args at level on logger unless another line of kind
// key was logged within the interval. A line logged after some were
// dropped carries "repeated": how many were dropped since the last one.
func (l *Limiter) Log(ctx context.Context, logger *slog.Logger, level slog.Level, key, msg string, args ...any) {
	if !logger.Enabled(ctx, level) {
		return
	}
	ok, suppressed := l.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, slog.Int("repeated", suppressed))
	}
	logger.Log(ctx, level, msg, args...)
}
