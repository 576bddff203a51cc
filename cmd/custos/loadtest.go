package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/cmd/internal/loadtest"
)

// loadtestAPIKeyEnv holds the admin key of loadtest: never a flag, so that it stays
// out of shell history and process listings.
const loadtestAPIKeyEnv = "CUSTOS_API_KEY"

func newLoadtestCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := loadtest.DefaultConfig()
	var jsonPath, csvPath string
	baseline := true
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load a running custos server on loopback and compare it to a baseline",
		Long: `loadtest drives a running custos server over HTTP with POST /v1/context/evaluate
from --connections closed-loop connections for --duration (after --warmup),
then, with --baseline, loads an in-process echo server that decodes the same
body and answers from one map lookup, with the same client settings, and
prints both and the ratios against the targets (throughput custos/baseline
>= 0.6, p99 custos/baseline <= 2.0).

It needs an admin key in CUSTOS_API_KEY (never a flag) to set up, idempotently:
one policy per load-test role (loadtest_<name>), one approved agent per role
(loadtest-<name>, reused when it exists) and one evaluate key per agent, named
with the run id and revoked at the end. Every decision is appended to the
server's log: load a throwaway data folder.

With --setup-keys N and --setup-policies M it first creates N more
evaluate keys (spread over the load-test agents) and M policies, each with
an approved agent (loadtest_bulk_NNNNNN), through the same API on
--setup-connections connections, with progress on stderr when it is a
terminal; the load then uses a sample of the new keys (one per connection).
Bulk keys stay in place, expiring after 7 days: they are the state later
runs measure against. More than 1% failed items (at least 100) stop it.

With --soak D it runs a soak instead of the measured phase and the
baseline: after the setup, the connections send at a fixed rate (--rate
R per second, or --rate-fraction F of the decisions/s a closed-loop probe
of --warmup+--duration measured first) for D, and every --soak-interval
(10s) record a point: decisions/s, p50/p99/max (from when each request
was due), errors and the server's RSS (VmRSS of --server-pid, or of the
process listening on the server's port, found through /proc/net/tcp and
/proc/*/fd: same user, Linux). The summary flags a p99 or an RSS that
grows over the soak (Theil-Sen fit of the intervals after the first
tenth; above +25% and +10% of the median). --csv writes the points, --json
the points and the summary. Not for CI: a soak is meant to run for 30
minutes or more on a quiet machine.

Loads target loopback only: --server must be 127.0.0.0/8, ::1 or localhost.

Exit codes: 0 the run finished (targets missed or not), 1 more than 1% of the
requests of a phase failed, 2 loadtest could not run (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.APIKey = os.Getenv(loadtestAPIKeyEnv)
			cfg.SkipBaseline = !baseline
			cfg.Logger = newLogger(stderr, slog.LevelInfo)
			cfg.Progress = func(label string, total uint64) loadtest.ProgressLine {
				return startProgress(stderr, "bulk setup: "+label, total)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := cfg.Run(ctx)
			if res.RunID == "" {
				return err // nothing was measured
			}
			if werr := res.WriteTable(stdout); werr != nil && err == nil {
				err = werr
			}
			if csvPath != "" && res.Soak != nil {
				if werr := writeSoakCSV(csvPath, *res.Soak); werr != nil && err == nil {
					err = werr
				}
			}
			if jsonPath != "" {
				if werr := writeJSON(jsonPath, res); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			return withCode(1, res.Err())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", cfg.Server, "base URL of the custos server; loopback only")
	f.IntVar(&cfg.Connections, "connections", cfg.Connections,
		fmt.Sprintf("concurrent connections, each a closed loop (%d..%d)", loadtest.MinConnections, loadtest.MaxConnections))
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration,
		fmt.Sprintf("measured time per phase (%s..%s)", loadtest.MinDuration, loadtest.MaxDuration))
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unrecorded load before each phase")
	f.StringVar(&jsonPath, "json", "", "also write the result as JSON to this file")
	f.BoolVar(&baseline, "baseline", baseline, "also load the in-process baseline and print the ratios")
	f.IntVar(&cfg.SetupKeys, "setup-keys", 0,
		fmt.Sprintf("bulk setup: create this many more evaluate keys first (0..%d)", loadtest.MaxSetupKeys))
	f.IntVar(&cfg.SetupPolicies, "setup-policies", 0,
		fmt.Sprintf("bulk setup: create or reuse this many policies with approved agents first (0..%d)", loadtest.MaxSetupPolicies))
	f.IntVar(&cfg.SetupConnections, "setup-connections", cfg.SetupConnections, "concurrent connections of the bulk setup")
	f.DurationVar(&cfg.SetupTimeout, "setup-timeout", cfg.SetupTimeout,
		fmt.Sprintf("bound on the bulk setup (at most %s)", loadtest.MaxSetupTimeout))
	f.DurationVar(&cfg.Soak, "soak", 0, fmt.Sprintf("run a soak this long at a fixed rate instead (%s..%s)", loadtest.MinSoak, loadtest.MaxSoak))
	f.Float64Var(&cfg.Rate, "rate", 0, "soak: requests per second")
	f.Float64Var(&cfg.RateFraction, "rate-fraction", 0, "soak: this share (0..1] of a capacity probe's decisions/s")
	f.DurationVar(&cfg.SoakInterval, "soak-interval", cfg.SoakInterval, "soak: how often to record a point")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "soak: the server's pid for RSS (default: the process listening on the port)")
	f.StringVar(&csvPath, "csv", "", "soak: also write the points as CSV to this file")
	return cmd
}

// writeSoakCSV writes the soak's points as CSV to path.
func writeSoakCSV(path string, s loadtest.SoakResult) error {
	var b bytes.Buffer
	if err := s.WriteCSV(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--csv: %w", err)
	}
	return nil
}

// writeJSON writes res as indented JSON to path.
func writeJSON(path string, res loadtest.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}
