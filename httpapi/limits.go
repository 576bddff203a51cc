package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxConnections    = 1024
	DefaultMaxInFlight       = 512
	DefaultMaxActive         = 128
	DefaultTenantMaxActive   = 3
)

// retryAfterSeconds is the Retry-After of every overload answer.
const retryAfterSeconds = "1"

// Limits bound what clients can hold of the server: how long each phase of a
// request may take and how many connections and requests may be open at
// once. A zero field takes its default. Handler applies the per-request
// limits (BodyTimeout, WriteTimeout, MaxInFlight); Serve applies all of them.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request line and its headers,
	// from the first byte of the request (or the accept). A request not
	// complete in time answers 408 and the connection closes. Default
	// DefaultReadHeaderTimeout (5s).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request body, from the moment the
	// headers are in. A body not complete in time answers 408 and the
	// connection closes. Requests without a body have no read deadline
	// while they are handled. Default DefaultBodyTimeout (10s).
	BodyTimeout time.Duration
	// WriteTimeout bounds each write of a response: a client that takes
	// none of the bytes offered for this long is dropped. It is per write,
	// not per response, so exports stream for as long as the client
	// reads, and slow handlers (backup, verify) are not cut off. Default
	// DefaultWriteTimeout (30s).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long. Default DefaultIdleTimeout (60s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers. net/http allows
	// 4 KiB of slack on top, and on a kept-alive connection up to 4 KiB
	// more that it read ahead while waiting for the request. Beyond it the
	// answer is 431 with a JSON detail. Default DefaultMaxHeaderBytes
	// (16 KiB).
	MaxHeaderBytes int
	// MaxConnections caps the client connections Serve keeps open. A
	// connection beyond it is answered 503 with a JSON detail and
	// Retry-After, and closed; it never waits. Keep it well below the
	// process's open-file limit: the store needs files too. Default
	// DefaultMaxConnections (1024).
	MaxConnections int
	// MaxInFlight caps the requests handled at once. A request beyond it
	// is answered 503 with a JSON detail and Retry-After at once. GET
	// /healthz is not counted, so liveness probes pass under overload.
	// Default DefaultMaxInFlight (512).
	MaxInFlight int
	// MaxActive caps the authenticated requests of tenants' keys worked on
	// at once; the others wait, holding no CPU, and each slot that frees
	// goes to the tenants in turn (round robin over the tenants with a
	// request waiting), so one tenant's flood queues behind its own
	// requests, not in front of another tenant's. A request whose turn
	// does not come within 10 s is answered 503. Default
	// DefaultMaxActive (128).
	MaxActive int
	// TenantMaxActive caps one tenant's share of MaxActive while another
	// tenant has requests too (a tenant alone may use every slot), so a
	// flood leaves the others slots, CPU and fsyncs. Default
	// DefaultTenantMaxActive (3: a steady tenant's p99 beside a flood
	// measured about 2x its p99 alone on the 2-core test machine, against
	// 4.5x with 16; docs/benchmarks.md, "Tenants"), or MaxActive when that
	// is smaller.
	TenantMaxActive int
	// TenantMaxInFlight caps the requests of one tenant's keys held at
	// once, working and waiting their turn, so that one tenant's flood
	// leaves slots of MaxInFlight to the others. A request beyond it is
	// answered 429 with a JSON detail and Retry-After at once. Default
	// half of MaxInFlight.
	TenantMaxInFlight int
}

// Validate reports every problem with l at once. Zero fields are valid
// (they take their defaults); negative ones are not.
func (l Limits) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", l.ReadHeaderTimeout},
		{"BodyTimeout", l.BodyTimeout},
		{"WriteTimeout", l.WriteTimeout},
		{"IdleTimeout", l.IdleTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("httpapi: Limits.%s must not be negative, got %s", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"MaxHeaderBytes", l.MaxHeaderBytes},
		{"MaxConnections", l.MaxConnections},
		{"MaxInFlight", l.MaxInFlight},
		{"MaxActive", l.MaxActive},
		{"TenantMaxActive", l.TenantMaxActive},
		{"TenantMaxInFlight", l.TenantMaxInFlight},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("httpapi: Limits.%s must not be negative, got %d", n.name, n.v))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	set(&l.BodyTimeout, DefaultBodyTimeout)
	set(&l.WriteTimeout, DefaultWriteTimeout)
	set(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.TenantMaxInFlight == 0 {
		l.TenantMaxInFlight = max(1, l.MaxInFlight/2)
	}
	if l.MaxActive == 0 {
		l.MaxActive = DefaultMaxActive
	}
	if l.TenantMaxActive == 0 {
		l.TenantMaxActive = min(DefaultTenantMaxActive, l.MaxActive)
	}
	return l
}

// limiter is the outermost handler: it counts requests in flight, marks the
// connection as being in a handler (see conn), and puts the body and write
// deadlines on every request before echo routes it.
type limiter struct {
	limits   Limits
	next     http.Handler
	inFlight atomic.Int64
}

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := r.Context().Value(connContextKey{}).(*conn); ok {
		c.inHandler.Store(true)
	}
	if r.URL.Path != "/healthz" {
		if l.inFlight.Add(1) > int64(l.limits.MaxInFlight) {
			l.inFlight.Add(-1)
			overloaded(w, r, "Too many requests in flight; retry shortly.")
			return
		}
		defer l.inFlight.Add(-1)
	}
	rc := http.NewResponseController(w)
	dw := &deadlineWriter{ResponseWriter: w, rc: rc, timeout: l.limits.WriteTimeout}
	dw.arm()
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// The read deadline is lifted once the body is in: net/http keeps
		// reading the connection in the background after that, and a
		// deadline hit there would cancel the request's context.
		_ = rc.SetReadDeadline(time.Now().Add(l.limits.BodyTimeout))
		body := &deadlineBody{src: r.Body, rc: rc}
		dw.body = body
		// A shallow copy, so that net/http's own view of the request (its
		// body bookkeeping after the handler) stays as it was.
		r2 := new(http.Request)
		*r2 = *r
		r2.Body = body
		r = r2
	}
	l.next.ServeHTTP(dw, r)
}

// overloaded answers 503 with a JSON detail and Retry-After, and closes the
// connection (whatever body is left is not read).
func overloaded(w http.ResponseWriter, r *http.Request, detail string) {
	h := w.Header()
	h.Set("Retry-After", retryAfterSeconds)
	if r.ContentLength != 0 {
		h.Set("Connection", "close")
	}
	writeJSONError(w, http.StatusServiceUnavailable, detail)
}

// writeJSONError writes {"detail": detail} with code, outside echo.
func writeJSONError(w http.ResponseWriter, code int, detail string) {
	body := jsonErrorBody(detail)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// deadlineBody lifts the body's read deadline once the body has been read
// to its end, and remembers whether it was.
type deadlineBody struct {
	src io.ReadCloser
	rc  *http.ResponseController
	// done is set once Read returned io.EOF.
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.src.Close() }

// deadlineWriter arms the connection's write deadline before every write,
// so that each write (not the whole response) must be taken by the client
// within the timeout.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	body    *deadlineBody // nil for requests without a body
}

func (w *deadlineWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

// WriteHeader closes the connection after the response when the handler
// answered without reading the whole body: net/http would otherwise read
// (and wait for) the rest before sending the answer, which lets a client
// that trickles a body hold back even a 401.
func (w *deadlineWriter) WriteHeader(code int) {
	if w.body != nil && !w.body.done {
		w.Header().Set("Connection", "close")
	}
	w.arm()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError flushes through to the connection under a fresh deadline.
func (w *deadlineWriter) FlushError() error {
	w.arm()
	return w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the net/http writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connContextKey holds the *conn of a request in its context (set by
// Serve's ConnContext).
type connContextKey struct{}
