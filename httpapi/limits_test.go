package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/verify"
)

// serveLimited serves the stack's Ledger with limits through Server.Serve
// on a real port of 127.0.0.1 and returns its address.
func serveLimited(t *testing.T, s *stack, limits httpapi.Limits) string {
	t.Helper()
	return serveLimitedOn(t, s, limits, func(ln net.Listener) net.Listener { return ln })
}

// smallSendBuffers gives every accepted connection a small send buffer, so
// that a response cannot hide in the kernel's buffers.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

func serveLimitedOn(t *testing.T, s *stack, limits httpapi.Limits, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	api, err := httpapi.New(httpapi.Config{
		Tenants: s.reg,
		Verify: func(ctx context.Context, _ string) (verify.Report, error) {
			return verify.Store(ctx, s.store, eventstore.DefaultChain)
		},
		Logger: s.logger,
		Limits: limits,
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- api.Serve(wrap(ln)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(ctx)
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// rawAnswer is what a raw connection got back.
type rawAnswer struct {
	resp    *http.Response
	body    []byte
	elapsed time.Duration
}

// exchange writes req on a new connection to addr, reads one response and
// the time it took from the first byte written.
func exchange(t *testing.T, addr, req string) rawAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	start := time.Now()
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	return readAnswer(t, bufio.NewReader(c), start)
}

func readAnswer(t *testing.T, br *bufio.Reader, start time.Time) rawAnswer {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawAnswer{resp: resp, body: body, elapsed: time.Since(start)}
}

// jsonDetail requires a JSON body of exactly {"detail": ...} and returns it.
func (a rawAnswer) jsonDetail(t *testing.T) string {
	t.Helper()
	assert.Equal(t, "application/json", a.resp.Header.Get("Content-Type"))
	return response{status: a.resp.StatusCode, body: a.body}.detail(t)
}

// TestProtocolErrorsAnswerJSON sends requests that net/http itself rejects
// before any handler runs (its answers are plain text) and requires JSON.
func TestProtocolErrorsAnswerJSON(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	addr := serveLimited(t, s, httpapi.Limits{MaxHeaderBytes: 1024, ReadHeaderTimeout: 300 * time.Millisecond})
	for _, tc := range []struct {
		name, req string
		status    int
		detail    string
	}{
		{"header too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n",
			431, "Request headers too large: at most 1024 bytes."},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "Bad request: malformed request line or headers."},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "Bad request: missing required Host header."},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400, "Bad request: invalid header name."},
		{"unknown transfer encoding", "POST /v1/keys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Unsupported transfer encoding."},
		{"unknown expectation", "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: lunch\r\n\r\n", 417, "Expectation failed: only Expect: 100-continue is supported."},
		{"unsupported version", "GET /healthz HTTP/2.5\r\nHost: x\r\n\r\n", 505, "HTTP version not supported: unsupported protocol version."},
		{"headers too slow", "GET /healthz HTTP/1.1\r\nHost: x\r\n", 408, "Request headers not received within 300ms."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := exchange(t, addr, tc.req)
			require.Equal(t, tc.status, a.resp.StatusCode, "body %s", a.body)
			assert.Equal(t, tc.detail, a.jsonDetail(t))
		})
	}

	// On a kept-alive connection, a handler's answer passes untouched and
	// the next, malformed request still gets JSON.
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(c)
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	ok := readAnswer(t, br, time.Now())
	require.Equal(t, http.StatusOK, ok.resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(ok.body))
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
	require.NoError(t, err)
	big := readAnswer(t, br, time.Now())
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, big.resp.StatusCode)
	assert.Equal(t, "Request headers too large: at most 1024 bytes.", big.jsonDetail(t))
}

// slowBody opens a connection, sends the headers of an evaluate with a
// 4 KiB body and trickles the body a byte every 50 ms (it would take over
// 3 minutes). It returns the answer and how long the server kept the
// connection open.
func slowBody(addr, key string) (status int, detail string, open time.Duration, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	hdr := "POST /v1/context/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n"
	if key != "" {
		hdr += "X-API-Key: " + key + "\r\n"
	}
	if _, err := io.WriteString(c, hdr+"\r\n"); err != nil {
		return 0, "", 0, err
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		resp, rerr := http.ReadResponse(bufio.NewReader(c), nil)
		if rerr != nil {
			err = rerr
			return
		}
		var b struct {
			Detail string `json:"detail"`
		}
		err = json.NewDecoder(resp.Body).Decode(&b)
		status, detail = resp.StatusCode, b.Detail
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	// Trickle until a write fails: the server closed the connection.
	for i := 0; i < 4096; i++ {
		if _, werr := c.Write([]byte(" ")); werr != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	open = time.Since(start)
	<-answered
	return status, detail, open, err
}

// TestSlowBodiesDoNotStallKeyedEvaluates runs a loop of keyed evaluations
// (on kept-alive connections, as agents do) while 80 connections without a
// key, twice the connection cap, trickle request bodies, reconnecting as
// soon as they are cut off; and a few with a valid key do the same. The
// loop gets only 200s with a bounded p99; every slow connection is answered
// (401 at once without a key, 408 with one, or 503 beyond the cap) and cut
// off within the body deadline plus slack, never held.
func TestSlowBodiesDoNotStallKeyedEvaluates(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	const bodyTimeout = 500 * time.Millisecond
	addr := serveLimited(t, e.stack, httpapi.Limits{BodyTimeout: bodyTimeout, MaxConnections: 40})

	// The evaluators connect before the attack, and keep their connections.
	const evaluators = 4
	clients := make([]*http.Client, evaluators)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 30 * time.Second}
		t.Cleanup(clients[i].CloseIdleConnections)
	}
	evaluate := func(c *http.Client, i int) (int, time.Duration, error) {
		body := evalBody(fmt.Sprintf("slow-%d", i), "crm", "low", "")
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/context/evaluate", strings.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("X-API-Key", e.agentKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, time.Since(start), nil
	}
	for i, c := range clients {
		code, _, err := evaluate(c, i)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}

	stop := make(chan struct{})
	type slowResult struct {
		status int
		detail string
		open   time.Duration
		err    error
		keyed  bool
	}
	var mu sync.Mutex
	var slow []slowResult
	var attackers sync.WaitGroup
	for i := range 80 {
		key := ""
		if i < 4 {
			key = e.agentKey
		}
		attackers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, d, open, err := slowBody(addr, key)
				mu.Lock()
				slow = append(slow, slowResult{st, d, open, err, key != ""})
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // let the attack fill the cap

	var latencies []time.Duration
	var failures []string
	var lmu sync.Mutex
	var loop sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for w, c := range clients {
		loop.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				code, d, err := evaluate(c, w*100000+i)
				lmu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case code != http.StatusOK:
					failures = append(failures, fmt.Sprint(code))
				default:
					latencies = append(latencies, d)
				}
				lmu.Unlock()
			}
		})
	}
	loop.Wait()
	close(stop)
	attackers.Wait()

	require.Empty(t, failures, "keyed evaluations under attack")
	require.NotEmpty(t, latencies)
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d evaluations, p50 %s, p99 %s; %d slow connections", len(latencies), latencies[len(latencies)/2], p99, len(slow))
	assert.Less(t, p99, time.Second, "p99 of keyed evaluations under attack")

	require.NotEmpty(t, slow)
	seen := map[int]int{}
	for _, r := range slow {
		require.NoError(t, r.err)
		seen[r.status]++
		// Cut off by the body deadline (or at once), never left trickling:
		// a body here would take over 3 minutes.
		assert.Less(t, r.open, bodyTimeout+3*time.Second, "slow connection open for %s (%d)", r.open, r.status)
		switch {
		case r.status == http.StatusServiceUnavailable:
			assert.Equal(t, "Too many connections; retry shortly.", r.detail)
		case r.keyed:
			assert.Equal(t, http.StatusRequestTimeout, r.status)
			assert.Equal(t, "Request body not received in time; send it at once.", r.detail)
		default:
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "Missing API key.", r.detail)
		}
	}
	assert.Positive(t, seen[http.StatusUnauthorized], "%v", seen)
	assert.Positive(t, seen[http.StatusRequestTimeout], "%v", seen)
}

// TestConnectionCapAnswers503Fast fills the connection cap with kept-alive
// connections and requires the next connection to get a 503 with a JSON
// detail and Retry-After at once, and a slot to come back when one closes.
func TestConnectionCapAnswers503Fast(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	addr := serveLimited(t, s, httpapi.Limits{MaxConnections: 3})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, readAnswer(t, bufio.NewReader(c), time.Now()).resp.StatusCode)
		held = append(held, c) // accepted, and kept alive
	}
	for range 3 {
		a := exchange(t, addr, "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: "+s.admin+"\r\n\r\n")
		require.Equal(t, http.StatusServiceUnavailable, a.resp.StatusCode, "body %s", a.body)
		assert.Equal(t, "Too many connections; retry shortly.", a.jsonDetail(t))
		assert.Equal(t, "1", a.resp.Header.Get("Retry-After"))
		assert.Less(t, a.elapsed, 2*time.Second, "answered at once, never queued")
	}
	require.NoError(t, held[0].Close())
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "a closed connection frees its slot")
}

// TestInFlightCapAnswers503Fast holds the in-flight cap with keyed requests
// whose bodies trickle, and requires the next request to get a 503 with a
// JSON detail and Retry-After at once, while GET /healthz still answers.
func TestInFlightCapAnswers503Fast(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	addr := serveLimited(t, s, httpapi.Limits{MaxInFlight: 2, TenantMaxInFlight: 2, BodyTimeout: 20 * time.Second})
	// Two requests whose bodies never finish fill the cap. A probe sent
	// while they are still arriving can take a slot and get one of them
	// turned away instead, so the probe waits for them, and the whole
	// setup is retried when the probe still got through.
	full := false
	for attempt := 0; attempt < 5 && !full; attempt++ {
		var trickles []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			_, err = io.WriteString(c, "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nX-API-Key: "+s.admin+"\r\n\r\n{")
			require.NoError(t, err)
			trickles = append(trickles, c)
		}
		time.Sleep(100 * time.Millisecond)
		a := exchange(t, addr, "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: "+s.admin+"\r\n\r\n")
		if full = a.resp.StatusCode == http.StatusServiceUnavailable; !full {
			for _, c := range trickles {
				_ = c.Close()
			}
			time.Sleep(100 * time.Millisecond) // let the server see them go
		}
	}
	require.True(t, full, "the two trickling requests fill the cap")
	a := exchange(t, addr, "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: "+s.admin+"\r\n\r\n")
	require.Equal(t, http.StatusServiceUnavailable, a.resp.StatusCode)
	assert.Equal(t, "Too many requests in flight; retry shortly.", a.jsonDetail(t))
	assert.Equal(t, "1", a.resp.Header.Get("Retry-After"))
	assert.Less(t, a.elapsed, 2*time.Second)
	live := exchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.Equal(t, http.StatusOK, live.resp.StatusCode, "liveness is not counted")
}

// TestLimitsValidate lists every negative field.
func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, httpapi.Limits{}.Validate())
	err := httpapi.Limits{BodyTimeout: -1, MaxConnections: -2}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Limits.BodyTimeout must not be negative")
	assert.Contains(t, err.Error(), "Limits.MaxConnections must not be negative")
}

// TestWriteDeadlineDropsAClientThatStopsReading asks for a response larger
// than the socket buffers can hold and does not read it: the per-write
// deadline must drop the connection, so that reading later finds it cut
// short (without the deadline the whole body would still be waiting).
func TestWriteDeadlineDropsAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// Enough events that the export outgrows any socket buffer.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				s.createKey(t, fmt.Sprintf("bulk-%d-%d-%s", w, i, strings.Repeat("x", 100)), "read", 0)
			}
		})
	}
	wg.Wait()
	addr := serveLimitedOn(t, s, httpapi.Limits{WriteTimeout: 300 * time.Millisecond},
		func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	// A small receive buffer, set before the handshake (set after it, Linux
	// may stall the window), so that the export cannot hide in buffers.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /v1/audit/export HTTP/1.1\r\nHost: x\r\nX-API-Key: "+s.admin+"\r\n\r\n")
	require.NoError(t, err)
	time.Sleep(2 * time.Second) // not reading, for well over the deadline
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	n, err := io.Copy(io.Discard, resp.Body)
	t.Logf("read %d bytes before the cut: %v", n, err)
	require.Error(t, err, "the export must be cut off, not complete (%d bytes)", n)
}
