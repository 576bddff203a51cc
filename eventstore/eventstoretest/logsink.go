package eventstoretest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LogSink is a slog.Handler that keeps every record as one line, its
// message and then its attributes as "key=value" separated by spaces, for
// tests that assert what a store, a Ledger or a server logged. Safe for
// concurrent use; the zero value is ready. It ignores levels, groups and
// attributes added with With.
type LogSink struct {
	mu    sync.Mutex
	lines []string
}

// Enabled reports true for every level.
func (s *LogSink) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r as one line.
func (s *LogSink) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	return nil
}

// WithAttrs returns s itself: the attributes are dropped.
func (s *LogSink) WithAttrs([]slog.Attr) slog.Handler { return s }

// WithGroup returns s itself: the group is dropped.
func (s *LogSink) WithGroup(string) slog.Handler { return s }

// Lines returns a copy of the lines so far.
func (s *LogSink) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Text returns the lines so far joined by newlines.
func (s *LogSink) Text() string { return strings.Join(s.Lines(), "\n") }

// Count returns how many lines contain substr.
func (s *LogSink) Count(substr string) int {
	n := 0
	for _, l := range s.Lines() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
