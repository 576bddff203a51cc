package lograte_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/lograte"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestAllowPassesOnePerIntervalAndCounts(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(time.Second, c.now)

	ok, n := l.Allow("disk")
	require.True(t, ok, "the first event of a kind passes")
	assert.Zero(t, n)
	for range 4999 {
		ok, _ := l.Allow("disk")
		require.False(t, ok, "repeats within the interval are dropped")
	}
	ok, _ = l.Allow("other")
	assert.True(t, ok, "kinds are limited separately")

	c.add(time.Second)
	ok, n = l.Allow("disk")
	require.True(t, ok, "one passes once the interval is over")
	assert.Equal(t, 4999, n, "and says how many were dropped")
	ok, _ = l.Allow("disk")
	assert.False(t, ok)

	c.add(time.Hour)
	ok, n = l.Allow("disk")
	assert.True(t, ok)
	assert.Equal(t, 1, n)
}

func TestLogWritesOneLinePerIntervalWithTheCount(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(time.Second, c.now)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx := context.Background()
	for i := range 5000 {
		if i == 2500 {
			c.add(time.Second)
		}
		l.Log(ctx, logger, slog.LevelError, "enospc", "pebble background error", "err", "no space left on device")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2, "%s", buf.String())
	var second map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	assert.Equal(t, "pebble background error", second["msg"])
	assert.Equal(t, float64(2499), second["repeated"])

	l.Log(ctx, logger, slog.LevelDebug, "quiet", "below the level")
	assert.NotContains(t, buf.String(), "below the level")
}

func TestManyKindsStayBounded(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(time.Second, c.now)
	for i := range 5000 {
		ok, _ := l.Allow(strings.Repeat("k", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
		require.True(t, ok, "a new kind always passes")
	}
}
