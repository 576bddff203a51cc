package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTuneGC is not parallel: it changes the process's GC target.
func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	tuneGC(func(string) (string, bool) { return "", false })
	require.Equal(t, serveGCPercent, debug.SetGCPercent(100), "GOGC unset: serve's own target")

	tuneGC(func(name string) (string, bool) { return "150", name == "GOGC" })
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left to the runtime")
}
