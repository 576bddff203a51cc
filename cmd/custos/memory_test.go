package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMeasureKeyCreationMemory is a measurement, not a check: with
// CUSTOS_MEASURE_KEYS=N it creates N keys through the real server (64
// connections) under several GC settings and logs, for each, the peak RSS
// while the keys are created, the RSS after, the RSS after a restart, the
// server's CPU time and the rate. docs/benchmarks.md has the figures.
//
//	CUSTOS_MEASURE_KEYS=100000 go test -run TestMeasureKeyCreationMemory -v -timeout 30m ./cmd/custos
func TestMeasureKeyCreationMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CUSTOS_MEASURE_KEYS"))
	if n <= 0 {
		t.Skip("a measurement: set CUSTOS_MEASURE_KEYS to run it")
	}
	configs := []struct {
		name string
		env  []string
	}{
		{"GOGC=400, no limit (before)", []string{"GOGC=400", "GOMEMLIMIT=off"}},
		{"default: GOGC=400, 50% of the machine", nil},
		{"GOGC=400, --memory-limit 256MiB", []string{"CUSTOS_MEMORY_LIMIT=256MiB"}},
		{"GOGC=100, --memory-limit 256MiB", []string{"GOGC=100", "CUSTOS_MEMORY_LIMIT=256MiB"}},
		{"GOGC=100, no limit", []string{"GOGC=100", "GOMEMLIMIT=off"}},
	}
	if only := os.Getenv("CUSTOS_MEASURE_ONLY"); only != "" {
		i, err := strconv.Atoi(only)
		require.NoError(t, err)
		configs = configs[i : i+1]
	}
	var table strings.Builder
	fmt.Fprintf(&table, "| setting | peak RSS creating | RSS after | RSS after restart | server CPU | keys/s |\n|---|---|---|---|---|---|\n")
	for _, c := range configs {
		dir := filepath.Join(t.TempDir(), "data")
		srv := startServerWith(t, dir, c.env)
		admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
		require.NotEmpty(t, admin)
		pid := srv.cmd.Process.Pid
		limitLine := regexp.MustCompile(`.*"memory limit".*`).FindString(srv.logs.String())

		var peak atomic.Int64
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				if rss := vmRSS(t, pid); rss > peak.Load() {
					peak.Store(rss)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		cpuBefore := cpuTime(t, pid)
		began := time.Now()
		createKeys(t, srv.addr, admin, n, 64)
		took := time.Since(began)
		cpu := cpuTime(t, pid) - cpuBefore
		close(stop)
		sampler.Wait()
		time.Sleep(2 * time.Second)
		after := vmRSS(t, pid)
		srv.stop(t)

		again := startServerWith(t, dir, c.env)
		time.Sleep(2 * time.Second)
		restarted := vmRSS(t, again.cmd.Process.Pid)
		again.stop(t)

		t.Logf("%s: %s", c.name, limitLine)
		fmt.Fprintf(&table, "| %s | %d MiB | %d MiB | %d MiB | %.1f s | %.0f |\n", c.name, peak.Load()>>20, after>>20, restarted>>20,
			cpu.Seconds(), float64(n)/took.Seconds())
	}
	t.Logf("%d keys, 64 connections:\n%s", n, table.String())
}

// createKeys creates n evaluate keys through POST /v1/keys on conns
// connections.
func createKeys(t *testing.T, addr, admin string, n, conns int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				body := fmt.Sprintf(`{"name": "bulk-%d", "scope": "evaluate", "expires_days": 30}`, i)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/v1/keys", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("X-API-Key", admin)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("key %d: %d %s", i, resp.StatusCode, b)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// vmRSS returns the resident set size of process pid.
func vmRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// cpuTime returns the user and system time process pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
