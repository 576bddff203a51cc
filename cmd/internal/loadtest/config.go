// Package loadtest drives a running custos server over HTTP on loopback and
// measures it: decisions per second, latency percentiles, ALLOW and DENY
// counts and errors. In the same run it can load an in-process baseline
// server (echo, the same JSON body, one map lookup, no policy and no log)
// with the same client settings, so that the figures come with the ratio to
// what the machine and the HTTP stack do without custos.
//
// Run sets the target up through the admin API first, idempotently: one
// policy per load-test role (roles are named loadtest_<name>, so a real
// server's roles are never touched), one approved agent per role
// (loadtest-<name>, reused when it exists) and one evaluate key per agent,
// named with the run id and revoked when the run ends. Every connection is
// one goroutine doing closed-loop requests with a fixed role and a few
// sessions of its own, reused, over a mix of about 60% ALLOW and 40% DENY.
//
// Loads target loopback only: Validate refuses any other host and the
// client's dialer refuses to connect to a non-loopback address, whatever a
// name resolves to.
//
// Run is safe to call from one goroutine at a time per Config; it owns every
// connection and server it opens and closes them before it returns.
package loadtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults and bounds of Config.
const (
	// DefaultServer is the server a Config without Server targets.
	DefaultServer = "http://127.0.0.1:8080"
	// DefaultConnections is the number of connections (goroutines).
	DefaultConnections = 64
	// MinConnections and MaxConnections bound Connections.
	MinConnections, MaxConnections = 1, 1024
	// DefaultDuration is how long each measured phase lasts.
	DefaultDuration = 10 * time.Second
	// MinDuration and MaxDuration bound Duration.
	MinDuration, MaxDuration = time.Second, 10 * time.Minute
	// DefaultWarmup is the warmup of DefaultConfig; a zero Warmup means none.
	DefaultWarmup = time.Second
	// MaxWarmup bounds Warmup.
	MaxWarmup = time.Minute

	// MaxSetupKeys and MaxSetupPolicies bound the bulk setup.
	MaxSetupKeys, MaxSetupPolicies = 1_000_000, 100_000
	// DefaultSetupConnections is the number of connections of the bulk
	// setup; MaxConnections bounds it.
	DefaultSetupConnections = 64
	// DefaultSetupTimeout bounds the bulk setup; MaxSetupTimeout bounds that.
	DefaultSetupTimeout, MaxSetupTimeout = 30 * time.Minute, 2 * time.Hour

	// MinSoak and MaxSoak bound Soak.
	MinSoak, MaxSoak = time.Second, 12 * time.Hour
	// DefaultSoakInterval is how often a soak records a point;
	// MinSoakInterval and MaxSoakInterval bound SoakInterval.
	DefaultSoakInterval              = 10 * time.Second
	MinSoakInterval, MaxSoakInterval = time.Second, 5 * time.Minute
	// MaxRate bounds Rate, in requests per second.
	MaxRate = 1_000_000
)

// Errors of Validate. Every problem of a Config is a *ConfigError matching
// ErrInvalidConfig; a server host that is not a loopback address also
// matches ErrNotLoopback.
var (
	ErrInvalidConfig = errors.New("loadtest: invalid config")
	ErrNotLoopback   = errors.New("loadtest: not a loopback address")
)

// ConfigError is one problem of a Config.
type ConfigError struct {
	// Field names the Config field (server, api_key, connections, duration,
	// warmup).
	Field string
	// Problem says what is wrong.
	Problem string
	// NotLoopback is true when the server host is not a loopback address.
	NotLoopback bool
}

func (e *ConfigError) Error() string {
	return "loadtest: invalid config: " + e.Field + ": " + e.Problem
}

// Is matches ErrInvalidConfig, and ErrNotLoopback when NotLoopback is set.
func (e *ConfigError) Is(target error) bool {
	return target == ErrInvalidConfig || (e.NotLoopback && target == ErrNotLoopback)
}

// Config says what to load and how. Start from DefaultConfig: zero values
// are invalid, except for Warmup, SkipBaseline and Logger.
type Config struct {
	// Server is the base URL of the custos server, http or https, whose host
	// is a loopback address: 127.0.0.0/8, ::1 or localhost. Default
	// DefaultServer.
	Server string
	// APIKey is an admin key of the server, used for setup only (policies,
	// agents, evaluate keys). Required; no default.
	APIKey string
	// Connections is the number of concurrent connections, each one
	// goroutine doing closed-loop requests. Default DefaultConnections;
	// from MinConnections to MaxConnections.
	Connections int
	// Duration is how long each measured phase (custos, then baseline)
	// lasts. Default DefaultDuration; from MinDuration to MaxDuration.
	Duration time.Duration
	// Warmup runs the same load before each measured phase without
	// recording it. Default DefaultWarmup; zero: no warmup. At most
	// MaxWarmup.
	Warmup time.Duration
	// SkipBaseline skips the baseline phase; Result.Baseline and
	// Result.Ratios are then nil. Default false.
	SkipBaseline bool
	// Logger receives progress (setup done, phase started). Default (nil):
	// discard.
	Logger *slog.Logger

	// SetupKeys is how many more evaluate keys the bulk setup creates,
	// spread over the load-test roles' agents, before the load; the load
	// then uses a sample of them (one per connection, up to the count).
	// They are left in place (expiring after 7 days) as the state later
	// runs measure against. Default 0: none; at most MaxSetupKeys.
	SetupKeys int
	// SetupPolicies is how many bulk policies, each with its approved agent
	// (roles loadtest_bulk_NNNNNN, agents loadtest-bulk-NNNNNN), the bulk
	// setup creates or finds in place. Default 0: none; at most
	// MaxSetupPolicies.
	SetupPolicies int
	// SetupConnections is the number of concurrent connections of the bulk
	// setup. Default DefaultSetupConnections; from MinConnections to
	// MaxConnections. Checked only with a bulk setup.
	SetupConnections int
	// SetupTimeout bounds the bulk setup. Default DefaultSetupTimeout; at
	// most MaxSetupTimeout. Checked only with a bulk setup.
	SetupTimeout time.Duration
	// Progress, when not nil, is called at the start of each bulk step
	// with its label and item count; the line it returns counts the items
	// as they finish. Default nil: no progress.
	Progress func(label string, total uint64) ProgressLine

	// Soak, when not zero, replaces the measured phase and the baseline by
	// a soak of this length at a fixed request rate (Rate, or RateFraction
	// of a closed-loop probe of Warmup+Duration) that records a point every
	// SoakInterval. Default 0: no soak; from MinSoak to MaxSoak.
	Soak time.Duration
	// Rate is the soak's request rate per second; exactly one of Rate and
	// RateFraction is set with Soak. At most MaxRate.
	Rate float64
	// RateFraction, in (0, 1], sets the soak's rate to this share of the
	// throughput a closed-loop probe of the server measured first.
	RateFraction float64
	// SoakInterval is how often the soak records a point. Default
	// DefaultSoakInterval; from MinSoakInterval to MaxSoakInterval.
	SoakInterval time.Duration
	// ServerPID is the server's process id, whose VmRSS the soak records.
	// Default 0: the process listening on the server's port, found through
	// /proc/net/tcp{,6} and /proc/*/fd (Linux, same user); RSS is left out
	// when none is found.
	ServerPID int
}

// DefaultConfig returns a Config with every default set and no APIKey.
func DefaultConfig() Config {
	return Config{
		Server:      DefaultServer,
		Connections: DefaultConnections,
		Duration:    DefaultDuration,
		Warmup:      DefaultWarmup,

		SetupConnections: DefaultSetupConnections,
		SetupTimeout:     DefaultSetupTimeout,
		SoakInterval:     DefaultSoakInterval,
	}
}

// Validate reports every problem of c at once, each a *ConfigError, joined
// with errors.Join; nil when c is valid.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	_, errs = parseServer(c.Server)
	if c.APIKey == "" {
		add("api_key", "an admin API key is required (CUSTOS_API_KEY)")
	}
	if c.Connections < MinConnections || c.Connections > MaxConnections {
		add("connections", "%d is out of range %d..%d", c.Connections, MinConnections, MaxConnections)
	}
	if c.Duration < MinDuration || c.Duration > MaxDuration {
		add("duration", "%s is out of range %s..%s", c.Duration, MinDuration, MaxDuration)
	}
	if c.Warmup < 0 || c.Warmup > MaxWarmup {
		add("warmup", "%s is out of range 0s..%s", c.Warmup, MaxWarmup)
	}
	if c.SetupKeys < 0 || c.SetupKeys > MaxSetupKeys {
		add("setup_keys", "%d is out of range 0..%d", c.SetupKeys, MaxSetupKeys)
	}
	if c.SetupPolicies < 0 || c.SetupPolicies > MaxSetupPolicies {
		add("setup_policies", "%d is out of range 0..%d", c.SetupPolicies, MaxSetupPolicies)
	}
	if c.SetupKeys != 0 || c.SetupPolicies != 0 {
		if c.SetupConnections < MinConnections || c.SetupConnections > MaxConnections {
			add("setup_connections", "%d is out of range %d..%d", c.SetupConnections, MinConnections, MaxConnections)
		}
		if c.SetupTimeout <= 0 || c.SetupTimeout > MaxSetupTimeout {
			add("setup_timeout", "%s is out of range (0s, %s]", c.SetupTimeout, MaxSetupTimeout)
		}
	}
	if c.Soak != 0 {
		if c.Soak < MinSoak || c.Soak > MaxSoak {
			add("soak", "%s is out of range %s..%s", c.Soak, MinSoak, MaxSoak)
		}
		if c.SoakInterval < MinSoakInterval || c.SoakInterval > MaxSoakInterval {
			add("soak_interval", "%s is out of range %s..%s", c.SoakInterval, MinSoakInterval, MaxSoakInterval)
		}
		switch {
		case (c.Rate != 0) == (c.RateFraction != 0):
			add("rate", "a soak needs exactly one of a rate and a rate fraction")
		case c.Rate != 0 && !(c.Rate > 0 && c.Rate <= MaxRate):
			add("rate", "%g is out of range (0, %d]", c.Rate, MaxRate)
		case c.RateFraction != 0 && !(c.RateFraction > 0 && c.RateFraction <= 1):
			add("rate_fraction", "%g is out of range (0, 1]", c.RateFraction)
		}
	} else if c.Rate != 0 || c.RateFraction != 0 {
		add("rate", "a rate needs a soak")
	}
	if c.ServerPID < 0 {
		add("server_pid", "%d is not a process id", c.ServerPID)
	}
	return errors.Join(errs...)
}

// serverURL parses raw as the base URL of a loopback server and returns it
// without a trailing slash. Its problems are *ConfigError values, joined.
func serverURL(raw string) (*url.URL, error) {
	u, errs := parseServer(raw)
	return u, errors.Join(errs...)
}

// parseServer is serverURL returning every problem.
func parseServer(raw string) (*url.URL, []error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, []error{&ConfigError{Field: "server", Problem: fmt.Sprintf("%q is not a URL", raw)}}
	}
	var errs []error
	add := func(notLoopback bool, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: "server", Problem: fmt.Sprintf("%q: ", raw) + fmt.Sprintf(format, args...),
			NotLoopback: notLoopback})
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		add(false, "scheme must be http or https")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		add(false, "give scheme, host, port and path only")
	}
	if host := u.Hostname(); host == "" {
		add(true, "no host; loads target loopback only (127.0.0.0/8, ::1, localhost)")
	} else if !IsLoopbackHost(host) {
		add(true, "host %s is not a loopback address; loads target loopback only (127.0.0.0/8, ::1, localhost)", host)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// IsLoopbackHost reports whether host (without port or brackets) is
// "localhost" or an IP address in 127.0.0.0/8 or ::1. Other names are not
// resolved: they are refused.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
