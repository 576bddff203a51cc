package main

import (
	"bytes"
	"io/fs"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func files(contents map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if c, ok := contents[name]; ok {
			return []byte(c), nil
		}
		return nil, fs.ErrNotExist
	}
}

const meminfo16G = "MemTotal:       16777216 kB\nMemFree:         1000 kB\n"

func TestPlanGC(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		flag      string
		env       map[string]string
		files     map[string]string
		gcPercent int
		limit     int64
		source    string
	}{
		{"machine memory", "", nil, map[string]string{"/proc/meminfo": meminfo16G},
			serveGCPercent, 8 << 30, "50% of MemTotal"},
		{"cgroup v2 at the root of the namespace", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "1073741824\n",
		}, serveGCPercent, 512 << 20, "50% of the cgroup limit (/sys/fs/cgroup/memory.max)"},
		{"cgroup v2 at the process's path", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/kubepods/pod1\n",
			"/sys/fs/cgroup/kubepods/pod1/memory.max": "2147483648\n", "/sys/fs/cgroup/memory.max": "max\n",
		}, serveGCPercent, 1 << 30, "50% of the cgroup limit (/sys/fs/cgroup/kubepods/pod1/memory.max)"},
		{"cgroup v2 without a limit", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n",
		}, serveGCPercent, 8 << 30, "50% of MemTotal"},
		{"cgroup v1", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
		}, serveGCPercent, 256 << 20, "50% of the cgroup limit (/sys/fs/cgroup/memory/memory.limit_in_bytes)"},
		{"cgroup v1 without a limit", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "4:memory:/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, serveGCPercent, 8 << 30, "50% of MemTotal"},
		{"cgroup limit above the machine", "", nil, map[string]string{
			"/proc/meminfo": meminfo16G, "/sys/fs/cgroup/memory.max": "68719476736\n",
		}, serveGCPercent, 8 << 30, "50% of MemTotal"},
		{"nothing readable", "", nil, nil, serveGCPercent, math.MaxInt64, "no memory size found"},
		{"flag", "1GiB", nil, map[string]string{"/proc/meminfo": meminfo16G}, serveGCPercent, 1 << 30, "--memory-limit"},
		{"flag off", "off", nil, map[string]string{"/proc/meminfo": meminfo16G}, serveGCPercent, math.MaxInt64, "--memory-limit"},
		{"GOMEMLIMIT wins over the flag", "1GiB", map[string]string{"GOMEMLIMIT": "300MiB"}, nil, serveGCPercent, 0, "GOMEMLIMIT=300MiB"},
		{"GOGC is left to the runtime", "", map[string]string{"GOGC": "150"}, map[string]string{"/proc/meminfo": meminfo16G},
			0, 8 << 30, "50% of MemTotal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := planGC(tc.flag, env(tc.env), files(tc.files))
			require.NoError(t, err)
			assert.Equal(t, tc.gcPercent, p.gcPercent, "gc percent")
			assert.Equal(t, tc.limit, p.limit, "limit")
			assert.Equal(t, tc.source, p.source)
		})
	}
	_, err := planGC("lots", env(nil), files(nil))
	require.ErrorContains(t, err, "--memory-limit")
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
	}{
		{"1073741824", 1 << 30}, {"1GiB", 1 << 30}, {"512MiB", 512 << 20}, {"64KiB", 64 << 10}, {"2TiB", 2 << 40},
		{"2GB", 2e9}, {"300MB", 3e8}, {"5KB", 5000}, {"1TB", 1e12}, {"100B", 100}, {" 1 GiB ", 1 << 30}, {"off", math.MaxInt64},
	}
	for _, tc := range cases {
		got, err := parseBytes(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "0", "1.5GiB", "1 gigabyte", "9999999TiB", "on"} {
		_, err := parseBytes(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "512.0MiB", formatBytes(512<<20))
	assert.Equal(t, "1.5GiB", formatBytes(3<<29))
	assert.Equal(t, "100B", formatBytes(100))
	assert.Equal(t, "off", formatBytes(math.MaxInt64))
}

// TestTuneGC is not parallel: it changes the process's GC settings.
func TestTuneGC(t *testing.T) {
	gcBefore, limitBefore := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(gcBefore)
		debug.SetMemoryLimit(limitBefore)
	})
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	tune := func(flag string, env func(string) (string, bool), files func(string) ([]byte, error)) error {
		attrs, err := tuneGC(flag, env, files)
		if err == nil {
			logger.Info("memory limit", attrs...)
		}
		return err
	}

	require.NoError(t, tune("", env(nil), files(map[string]string{"/proc/meminfo": meminfo16G})))
	require.Equal(t, serveGCPercent, debug.SetGCPercent(100), "GOGC unset: serve's own target")
	require.Equal(t, int64(8<<30), debug.SetMemoryLimit(math.MaxInt64), "half the machine")
	assert.Contains(t, logs.String(), `msg="memory limit" limit=8.0GiB limit_bytes=8589934592 from="50% of MemTotal" gogc=400 memory=16.0GiB`)

	logs.Reset()
	require.NoError(t, tune("256MiB", env(map[string]string{"GOGC": "150"}), files(nil)))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left to the runtime")
	require.Equal(t, int64(256<<20), debug.SetMemoryLimit(math.MaxInt64))
	assert.Contains(t, logs.String(), `limit=256.0MiB`)

	require.NoError(t, tune("1GiB", env(map[string]string{"GOMEMLIMIT": "300MiB"}), files(nil)))
	require.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(math.MaxInt64), "GOMEMLIMIT set: left to the runtime")

	require.Error(t, tune("lots", env(nil), files(nil)))
}
