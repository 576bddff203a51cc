package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadtestReport is the part of `loadtest --json` the test reads.
type loadtestReport struct {
	Server      string  `json:"server"`
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	Custos      struct {
		DecisionsPerS float64 `json:"decisions_per_s"`
		Decisions     int64   `json:"decisions"`
		Allow         int64   `json:"allow"`
		Deny          int64   `json:"deny"`
		Unexpected    int64   `json:"unexpected"`
		Errors        int64   `json:"errors"`
		LatencyMS     struct {
			P50, P99, Max float64
		} `json:"latency_ms"`
	} `json:"custos"`
	Baseline *struct {
		Decisions int64 `json:"decisions"`
		Errors    int64 `json:"errors"`
	} `json:"baseline"`
	Ratios *struct {
		Throughput     float64 `json:"throughput"`
		P99            float64 `json:"p99"`
		ThroughputPass bool    `json:"throughput_pass"`
	} `json:"ratios"`
	Machine struct {
		CPUs int `json:"cpus"`
	} `json:"machine"`
}

func TestLoadtestAgainstARealServer(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)
	env := []string{"CUSTOS_API_KEY=" + admin}

	// Twice on one server: setup is idempotent and the second run reuses the
	// policies and agents of the first.
	for run := range 2 {
		out := filepath.Join(t.TempDir(), "result.json")
		args := []string{"loadtest", "--server", "http://" + srv.addr, "--connections", "4", "--duration", "2s", "--warmup", "0s", "--json", out}
		if run == 1 {
			args = append(args, "--baseline=false", "--duration", "1s")
		}
		r := runCLI(t, env, args...)
		require.Equal(t, 0, r.code, "run %d: %s%s", run, r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "decisions/s")
		assert.NotContains(t, r.stdout+r.stderr, admin, "the admin key is never printed")

		b, err := os.ReadFile(out)
		require.NoError(t, err)
		var rep loadtestReport
		require.NoError(t, json.Unmarshal(b, &rep), "%s", b)
		assert.Equal(t, "http://"+srv.addr, rep.Server)
		assert.Equal(t, 4, rep.Connections)
		assert.Positive(t, rep.Machine.CPUs)
		c := rep.Custos
		require.Positive(t, c.Decisions)
		assert.Positive(t, c.DecisionsPerS)
		assert.Positive(t, c.Allow, "ALLOW seen")
		assert.Positive(t, c.Deny, "DENY seen")
		assert.Equal(t, c.Allow+c.Deny, c.Decisions)
		assert.Zero(t, c.Errors)
		assert.Zero(t, c.Unexpected, "every decision is the one the mix expects")
		assert.Positive(t, c.LatencyMS.P50)
		assert.GreaterOrEqual(t, c.LatencyMS.Max, c.LatencyMS.P99)
		if run == 0 {
			assert.InDelta(t, 0.6, float64(c.Allow)/float64(c.Decisions), 0.1, "about 60%% ALLOW")
			require.NotNil(t, rep.Baseline)
			assert.Positive(t, rep.Baseline.Decisions)
			require.NotNil(t, rep.Ratios)
			assert.Positive(t, rep.Ratios.Throughput)
			assert.Positive(t, rep.Ratios.P99)
			assert.Contains(t, r.stdout, "throughput custos/baseline")
		} else {
			assert.Nil(t, rep.Ratios)
		}
	}

	// Every key the runs created is revoked again: only the admin key is active.
	code, body := srv.do(t, "GET", "/v1/keys", admin, "")
	require.Equal(t, 200, code)
	var keys []struct {
		Name     string `json:"name"`
		IsActive bool   `json:"is_active"`
	}
	require.NoError(t, json.Unmarshal(body, &keys))
	require.Len(t, keys, 11, "one admin key and five keys per run")
	active := 0
	for _, k := range keys {
		if k.IsActive {
			active++
		}
	}
	assert.Equal(t, 1, active)
	srv.stop(t)

	v := runCLI(t, nil, "verify", "--data", dir)
	assert.Equal(t, 0, v.code, "the loaded chain verifies: %s", v.stderr)
}

func TestLoadtestRefusesNonLoopbackAndNeedsAKey(t *testing.T) {
	t.Parallel()
	r := runCLI(t, []string{"CUSTOS_API_KEY="}, "loadtest", "--server", "http://10.0.0.1:8080", "--connections", "2000")
	assert.Equal(t, 2, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "host 10.0.0.1 is not a loopback address; loads target loopback only")
	assert.Contains(t, r.stderr, "CUSTOS_API_KEY")
	assert.Contains(t, r.stderr, "connections: 2000 is out of range 1..1024")

	r = runCLI(t, []string{"CUSTOS_API_KEY=cst_x", "CUSTOS_SERVER=http://example.com"}, "loadtest")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "host example.com is not a loopback address")
}

func TestLoadtestBulkSetupCreatesKeysAndPolicies(t *testing.T) {
	t.Parallel()
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)
	env := []string{"CUSTOS_API_KEY=" + admin}

	// Twice: the second run creates more keys and reuses the policies.
	for run := range 2 {
		out := filepath.Join(t.TempDir(), "result.json")
		r := runCLI(t, env, "loadtest", "--server", "http://"+srv.addr, "--connections", "4", "--duration", "1s",
			"--warmup", "0s", "--baseline=false", "--setup-keys", "300", "--setup-policies", "12",
			"--setup-connections", "8", "--json", out)
		require.Equal(t, 0, r.code, "run %d: %s%s", run, r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "bulk setup: 300 keys (0 failed)")
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		var rep struct {
			loadtestReport
			Setup struct {
				Keys, KeyErrors, Policies, PolicyErrors int64
				KeysPerS                                float64 `json:"keys_per_s"`
			} `json:"setup"`
		}
		require.NoError(t, json.Unmarshal(b, &rep), "%s", b)
		assert.EqualValues(t, 300, rep.Setup.Keys)
		assert.EqualValues(t, 12, rep.Setup.Policies)
		assert.Zero(t, rep.Setup.KeyErrors+rep.Setup.PolicyErrors)
		assert.Positive(t, rep.Setup.KeysPerS)
		assert.Positive(t, rep.Custos.Decisions, "the load ran on bulk keys")
		assert.Zero(t, rep.Custos.Errors)
		assert.Zero(t, rep.Custos.Unexpected)
	}

	code, body := srv.do(t, "GET", "/v1/keys", admin, "")
	require.Equal(t, 200, code)
	var keys []struct {
		IsActive bool `json:"is_active"`
	}
	require.NoError(t, json.Unmarshal(body, &keys))
	active := 0
	for _, k := range keys {
		if k.IsActive {
			active++
		}
	}
	assert.Len(t, keys, 1+2*(5+300), "admin, and per run five run keys and 300 bulk keys")
	assert.Equal(t, 1+2*300, active, "run keys are revoked, bulk keys stay")

	code, body = srv.do(t, "GET", "/v1/policies", admin, "")
	require.Equal(t, 200, code)
	var policies []map[string]any
	require.NoError(t, json.Unmarshal(body, &policies))
	assert.Len(t, policies, 5+12, "bulk policies are reused, not duplicated")
	code, _ = srv.do(t, "GET", "/v1/agents/loadtest-bulk-000011", admin, "")
	assert.Equal(t, 200, code)
}

func TestLoadtestSoakRecordsPointsAndRSS(t *testing.T) {
	t.Parallel()
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	require.NotEmpty(t, admin)
	env := []string{"CUSTOS_API_KEY=" + admin}

	type soakReport struct {
		Custos struct {
			Decisions int64 `json:"decisions"`
		} `json:"custos"`
		Baseline *struct{} `json:"baseline"`
		Soak     struct {
			RatePerS  float64 `json:"rate_per_s"`
			ServerPID int     `json:"server_pid"`
			Intervals []struct {
				Decisions     int64   `json:"decisions"`
				DecisionsPerS float64 `json:"decisions_per_s"`
				Errors        int64   `json:"errors"`
				Unexpected    int64   `json:"unexpected"`
				P99MS         float64 `json:"p99_ms"`
				RSSBytes      int64   `json:"rss_bytes"`
			} `json:"intervals"`
			Summary struct {
				Decisions int64 `json:"decisions"`
				Errors    int64 `json:"errors"`
				P99Trend  struct {
					Points int `json:"points"`
				} `json:"p99_trend_ms"`
			} `json:"summary"`
		} `json:"soak"`
	}
	cases := []struct {
		name string
		args []string
		pid  bool // give --server-pid
	}{
		{"fixed rate, pid found by port", []string{"--rate", "200"}, false},
		{"half of a probe, pid given", []string{"--rate-fraction", "0.5", "--duration", "1s", "--warmup", "0s"}, true},
	}
	for _, tc := range cases {
		out := filepath.Join(t.TempDir(), "soak.json")
		csvOut := filepath.Join(t.TempDir(), "soak.csv")
		args := append([]string{"loadtest", "--server", "http://" + srv.addr, "--connections", "4",
			"--soak", "3s", "--soak-interval", "1s", "--json", out, "--csv", csvOut}, tc.args...)
		if tc.pid {
			args = append(args, "--server-pid", strconv.Itoa(srv.cmd.Process.Pid))
		}
		r := runCLI(t, env, args...)
		require.Equal(t, 0, r.code, "%s: %s%s", tc.name, r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "p99 trend:", tc.name)
		assert.Contains(t, r.stdout, "RSS trend:", tc.name)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		var rep soakReport
		require.NoError(t, json.Unmarshal(b, &rep), "%s", b)
		assert.Nil(t, rep.Baseline, "a soak has no baseline")
		s := rep.Soak
		assert.Equal(t, srv.cmd.Process.Pid, s.ServerPID, tc.name)
		require.Len(t, s.Intervals, 3, tc.name)
		var sum int64
		for i, iv := range s.Intervals {
			assert.Positive(t, iv.Decisions, "%s: interval %d", tc.name, i)
			assert.Zero(t, iv.Errors)
			assert.Zero(t, iv.Unexpected)
			assert.Positive(t, iv.P99MS)
			assert.Positive(t, iv.RSSBytes, "%s: interval %d has the server's RSS", tc.name, i)
			sum += iv.Decisions
		}
		assert.Equal(t, s.Summary.Decisions, sum)
		assert.Equal(t, 2, s.Summary.P99Trend.Points, "the first of three intervals is warmup")
		if tc.pid {
			require.Positive(t, rep.Custos.Decisions, "the probe ran")
			assert.Positive(t, s.RatePerS)
		} else {
			assert.Equal(t, 200.0, s.RatePerS)
			assert.InDelta(t, 600, sum, 60, "paced at 200/s for 3 s")
		}
		csvb, err := os.ReadFile(csvOut)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(csvb)), "\n")
		require.Len(t, lines, 4, "a header and three points")
		assert.True(t, strings.HasPrefix(lines[0], "index,start_s,length_s,decisions_per_s"))
	}
}
