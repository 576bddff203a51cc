package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// evaluatePath is the route every phase loads.
const evaluatePath = "/v1/context/evaluate"

// requestTimeout bounds one request, so that a stuck server ends a phase.
const requestTimeout = 30 * time.Second

// Run sets the server up, loads it for Warmup+Duration, then (unless
// SkipBaseline) loads an in-process baseline server the same way, and
// returns the figures. The evaluate keys it created are revoked before it
// returns. An invalid Config, a failed setup or a baseline that cannot start
// is an error with no Result. When ctx is done during a phase, Run returns
// what it measured so far with ctx's error. Errors answered by the server
// are counted in the Result, not returned: see Result.Err.
func (c Config) Run(ctx context.Context) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := serverURL(c.Server)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Server: base.String(), Connections: c.Connections, Duration: c.Duration, Warmup: c.Warmup,
		RunID:   newRunID(),
		Machine: Machine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
	}

	setupClient := newClient(4)
	defer setupClient.CloseIdleConnections()
	adm := &admin{client: setupClient, base: res.Server, key: c.APIKey}
	keys, err := adm.setup(ctx, res.RunID)
	if err != nil {
		return Result{}, fmt.Errorf("setup on %s: %w", res.Server, err)
	}
	defer func() {
		for _, err := range adm.revoke(ctx, keys) {
			c.Logger.Warn("could not revoke a load-test key", "err", err)
		}
	}()
	c.Logger.Info("setup done", "server", res.Server, "run_id", res.RunID, "roles", len(roles))

	perRole := (c.Connections + len(roles) - 1) / len(roles)
	setup, sample, err := c.bulkSetup(ctx, res.Server, res.RunID, perRole)
	if c.SetupKeys != 0 || c.SetupPolicies != 0 {
		res.Setup = &setup
		c.Logger.Info("bulk setup done", "keys", setup.Keys, "key_errors", setup.KeyErrors,
			"keys_per_s", int(setup.KeysPerS()), "policies", setup.Policies, "policy_errors", setup.PolicyErrors)
	}
	if err != nil {
		return res, fmt.Errorf("bulk setup on %s: %w", res.Server, err)
	}
	conns, err := connections(res.RunID, c.Connections, func(i, ri int) string {
		if s := sample; s != nil && len(s[ri]) > 0 {
			return s[ri][(i/len(roles))%len(s[ri])].key // a sample of the bulk keys
		}
		return keys[ri].key
	})
	if err != nil {
		return Result{}, err
	}
	if c.Soak > 0 {
		return c.runSoak(ctx, res, base.Port(), conns)
	}
	c.Logger.Info("loading custos", "connections", c.Connections,
		"warmup", c.Warmup.String(), "duration", c.Duration.String())
	res.Custos, err = phase(ctx, c, res.Server+evaluatePath, conns, true)
	if err != nil || c.SkipBaseline {
		return res, err
	}

	bl, err := StartBaseline()
	if err != nil {
		return res, err
	}
	defer bl.Close()
	c.Logger.Info("loading baseline", "addr", bl.URL())
	stats, err := phase(ctx, c, bl.URL()+evaluatePath, conns, false)
	res.Baseline = &stats
	res.Ratios = ratios(res.Custos, stats)
	if cerr := bl.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close baseline: %w", cerr)
	}
	return res, err
}

// runSoak probes the server when the rate is a fraction of its capacity,
// then soaks it; res carries the probe as Custos and the soak as Soak.
func (c Config) runSoak(ctx context.Context, res Result, port string, conns []conn) (Result, error) {
	url := res.Server + evaluatePath
	rate := c.Rate
	if c.RateFraction > 0 {
		c.Logger.Info("probing capacity", "connections", c.Connections,
			"warmup", c.Warmup.String(), "duration", c.Duration.String())
		probe, err := phase(ctx, c, url, conns, true)
		res.Custos = probe
		if err != nil {
			return res, err
		}
		if rate = c.RateFraction * probe.Throughput(); rate <= 0 {
			return res, fmt.Errorf("the probe measured no throughput (%d errors)", probe.Errors)
		}
	}
	pid := c.ServerPID
	if pid == 0 {
		var err error
		if pid, err = findServerPID(port, res.Server); err != nil {
			c.Logger.Warn("soak without RSS: server process not found; give --server-pid", "err", err)
		}
	}
	c.Logger.Info("soaking", "rate_per_s", int(rate), "for", c.Soak.String(), "every", c.SoakInterval.String(),
		"server_pid", pid)
	s := c.soak(ctx, url, conns, rate, pid)
	s.RateFraction = c.RateFraction
	res.Soak = &s
	return res, ctx.Err()
}

// findServerPID finds the process listening on the server's port.
func findServerPID(port, server string) (int, error) {
	if port == "" {
		port = "80"
		if strings.HasPrefix(server, "https:") {
			port = "443"
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	return findListenerPID(n)
}

// newRunID returns 8 random hex characters.
func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// conn is what one connection sends: its role's evaluate key and bodies.
type conn struct {
	key    string
	bodies []body
}

// connections builds n connections; connection i has role roles[i%len(roles)]
// and key keyOf(i, role index).
func connections(runID string, n int, keyOf func(conn, role int) string) ([]conn, error) {
	out := make([]conn, n)
	for i := range out {
		ri := i % len(roles)
		bodies, err := connectionBodies(runID, i, roles[ri])
		if err != nil {
			return nil, err
		}
		out[i] = conn{key: keyOf(i, ri), bodies: bodies}
	}
	return out, nil
}

// newClient returns a client for closed-loop load with n connections:
// keep-alive, n idle connections per host, no proxy, no compression, and a
// dialer that refuses non-loopback addresses.
func newClient(n int) *http.Client {
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil || !IsLoopbackHost(host) {
				return fmt.Errorf("dial %s: %w; loads target loopback only", address, ErrNotLoopback)
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// phase loads url with one goroutine per connection for c.Warmup (not
// recorded) and then c.Duration, and summarises the measured window.
// checkExpected counts decisions that differ from the mix's expectation.
func phase(ctx context.Context, c Config, url string, conns []conn, checkExpected bool) (Stats, error) {
	client := newClient(len(conns))
	defer client.CloseIdleConnections()
	errs := newErrorLog()
	workers := make([]worker, len(conns))
	start := time.Now()
	measureFrom := start.Add(c.Warmup)
	end := measureFrom.Add(c.Duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.samples = make([]time.Duration, 0, 4096)
		rng := mathrand.New(mathrand.NewPCG(uint64(start.UnixNano()), uint64(i)))
		wg.Go(func() {
			w.loop(ctx, client, url, conns[i], rng, measureFrom, end, checkExpected, errs)
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)

	var st Stats
	var all []time.Duration
	for i := range workers {
		w := &workers[i]
		st.Allow += w.allow
		st.Deny += w.deny
		st.Unexpected += w.unexpected
		st.Errors += w.errors
		all = append(all, w.samples...)
	}
	st.Decisions = st.Allow + st.Deny
	st.Elapsed = max(elapsed, 0)
	st.Latency = Summarize(all)
	st.FirstErrors = errs.first()
	return st, ctx.Err()
}

// worker is one connection's closed loop and its own counters.
type worker struct {
	samples                   []time.Duration
	allow, deny, unexpected   int64
	errors                    int64
	buf                       bytes.Buffer
	decoded                   evaluateResponse
	contentType, apiKeyHeader []string
}

// transportErrorPause keeps a worker from spinning when the server refuses
// connections.
const transportErrorPause = 10 * time.Millisecond

func (w *worker) loop(ctx context.Context, client *http.Client, url string, cn conn, rng *mathrand.Rand,
	measureFrom, end time.Time, checkExpected bool, errs *errorLog) {
	w.contentType = []string{"application/json"}
	w.apiKeyHeader = []string{cn.key}
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		b := cn.bodies[rng.IntN(len(cn.bodies))]
		record := !t0.Before(measureFrom)
		decision, err := w.do(ctx, client, url, b.json)
		lat := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted: not the server's error
			}
			errs.add(err.Error())
			if record {
				w.errors++
			}
			if _, status := errors.AsType[*statusError](err); !status {
				time.Sleep(transportErrorPause)
			}
			continue
		}
		if !record {
			continue
		}
		w.samples = append(w.samples, lat)
		switch decision {
		case decisionAllow:
			w.allow++
		case decisionDeny:
			w.deny++
		}
		if checkExpected && decision != b.want {
			w.unexpected++
		}
	}
}

// statusError is an answer other than 200 with a decision.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.status, e.body)
}

// do sends one evaluation and returns the decision.
func (w *worker) do(ctx context.Context, client *http.Client, url string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header["Content-Type"] = w.contentType
	req.Header["X-Api-Key"] = w.apiKeyHeader
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &statusError{status: resp.StatusCode, body: string(truncate(bytes.TrimSpace(w.buf.Bytes()), 160))}
	}
	w.decoded = evaluateResponse{}
	if err := json.Unmarshal(w.buf.Bytes(), &w.decoded); err != nil {
		return "", fmt.Errorf("decode answer: %w", err)
	}
	switch w.decoded.Decision {
	case decisionAllow, decisionDeny:
		return w.decoded.Decision, nil
	}
	return "", fmt.Errorf("answer without ALLOW or DENY: %s", truncate(w.buf.Bytes(), 160))
}

// maxDistinctErrors bounds how many distinct error messages are kept.
const maxDistinctErrors = 5

// errorLog keeps the first distinct error messages and their counts. It is
// safe for concurrent use.
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int64
	order  []string
}

func newErrorLog() *errorLog { return &errorLog{counts: make(map[string]int64)} }

func (l *errorLog) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.counts[msg]; !ok {
		if len(l.order) >= maxDistinctErrors {
			return
		}
		l.order = append(l.order, msg)
	}
	l.counts[msg]++
}

func (l *errorLog) first() []ErrorCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ErrorCount, len(l.order))
	for i, m := range l.order {
		out[i] = ErrorCount{Message: m, Count: l.counts[m]}
	}
	return out
}
