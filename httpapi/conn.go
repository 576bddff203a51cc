package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos/httpapi/wire"
)

// Bounds of turning away a connection beyond Limits.MaxConnections.
const (
	// rejectTimeout bounds writing the 503 and waiting for the client to
	// read it (so that closing does not reset the connection under it).
	rejectTimeout = 500 * time.Millisecond
	// maxRejecting caps connections being turned away at once; beyond it a
	// connection is closed without an answer, so that turning clients away
	// never holds more than this many extra files.
	maxRejecting = 64
	// rejectLogInterval is how often turned-away connections are logged
	// (with a count), however many there are.
	rejectLogInterval = 10 * time.Second
)

// jsonErrorBody is the encoding of wire.ErrorBody{detail}.
func jsonErrorBody(detail string) []byte {
	b, err := json.Marshal(wire.ErrorBody{Detail: detail})
	if err != nil { // a string always encodes
		panic(err)
	}
	return b
}

// rawJSONResponse is a whole HTTP/1.1 response with a JSON error body that
// closes the connection, for answers written straight to the connection.
func rawJSONResponse(code int, detail string, extra string) []byte {
	body := jsonErrorBody(detail)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n",
		code, http.StatusText(code), len(body), extra)
	b.Write(body)
	return b.Bytes()
}

// listener caps the connections open at once (Limits.MaxConnections). A
// connection beyond the cap is not queued: it is answered 503 and closed.
type listener struct {
	net.Listener
	max       int64
	open      atomic.Int64
	rejecting chan struct{} // a slot per connection being turned away
	overload  []byte        // the 503 response
	tooSlow   []byte        // the 408 response to a request whose headers timed out
	badReq    func(code int, text string) string
	logger    *slog.Logger

	rejected   atomic.Int64 // since the last log line
	lastLogged atomic.Int64 // unix nanoseconds
}

func newListener(ln net.Listener, l Limits, logger *slog.Logger) *listener {
	return &listener{
		Listener:  ln,
		max:       int64(l.MaxConnections),
		rejecting: make(chan struct{}, maxRejecting),
		overload: rawJSONResponse(http.StatusServiceUnavailable,
			"Too many connections; retry shortly.", "Retry-After: "+retryAfterSeconds+"\r\n"),
		tooSlow: rawJSONResponse(http.StatusRequestTimeout,
			fmt.Sprintf("Request headers not received within %s.", l.ReadHeaderTimeout), ""),
		badReq: func(code int, text string) string { return protocolErrorDetail(code, text, l.MaxHeaderBytes) },
		logger: logger,
	}
}

// Accept returns the next connection under the cap, turning away those
// beyond it.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &conn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.reject(c)
	}
}

// reject answers c 503 and closes it, off the accept loop.
func (l *listener) reject(c net.Conn) {
	l.noteRejected()
	select {
	case l.rejecting <- struct{}{}:
	default:
		_ = c.Close() // turning away too many already: no answer
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		if _, err := c.Write(l.overload); err == nil {
			// Send FIN and read what the client sent until it closes, so
			// that the close does not turn into a reset that would
			// discard the answer before the client read it.
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
		}
		_ = c.Close()
	}()
}

// noteRejected counts a turned-away connection and logs the count at most
// once per rejectLogInterval.
func (l *listener) noteRejected() {
	n := l.rejected.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLogged.Load()
	if now-last < int64(rejectLogInterval) || !l.lastLogged.CompareAndSwap(last, now) {
		return
	}
	n = l.rejected.Swap(0)
	l.logger.Warn("connections turned away: the connection cap is reached",
		"rejected", n, "max_connections", l.max)
}

// conn is a connection under the cap. It gives its slot back when closed,
// and it turns net/http's own error answers (written straight to the
// connection before a handler runs, as text/plain: 400 malformed request,
// 431 headers too large, 501 unknown transfer encoding, 505, 417) into the
// same answers with a JSON {"detail": ...} body.
//
// net/http writes such an answer only between requests: after a response
// was finished (http.StateIdle) or a connection accepted, and before the
// next handler starts. The limiter marks a handler's start (inHandler) and
// Serve's ConnState hook marks the end of a response, so a response of a
// handler is never touched, whatever its bytes.
type conn struct {
	net.Conn
	l         *listener
	closeOnce sync.Once
	// inHandler is set while a request's handler runs and its response
	// is written; cleared when the connection turns idle.
	inHandler atomic.Bool
	// headerBytes counts bytes read since the last response ended: a
	// timeout with some read means a request's headers came too slowly.
	headerBytes atomic.Int64
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.l.open.Add(-1) })
	return err
}

// idle marks the end of a response.
func (c *conn) idle() {
	c.inHandler.Store(false)
	c.headerBytes.Store(0)
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.inHandler.Load() {
		return n, err
	}
	read := c.headerBytes.Add(int64(n))
	var ne net.Error
	if err != nil && read > 0 && errors.As(err, &ne) && ne.Timeout() {
		// net/http hangs up without a word on a header timeout; say why.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(rejectTimeout))
		_, _ = c.Conn.Write(c.l.tooSlow)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.inHandler.Load() {
		return c.Conn.Write(p)
	}
	code, text, ok := parseStatusLine(p)
	if !ok || code < 400 {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(rawJSONResponse(code, c.l.badReq(code, text), "")); err != nil {
		return 0, err
	}
	return len(p), nil
}

// parseStatusLine reads "HTTP/1.1 431 Request Header Fields Too Large" (or
// "HTTP/1.1 400 Bad Request: missing required Host header") from the start
// of p: the code, and the text net/http put after the reason phrase.
func parseStatusLine(p []byte) (code int, text string, ok bool) {
	const prefix = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(prefix)) || len(p) < len(prefix)+3 {
		return 0, "", false
	}
	code, err := strconv.Atoi(string(p[len(prefix) : len(prefix)+3]))
	if err != nil {
		return 0, "", false
	}
	line := p[len(prefix)+3:]
	if i := bytes.Index(line, []byte("\r\n")); i >= 0 {
		line = line[:i]
	}
	if _, after, found := bytes.Cut(line, []byte(": ")); found {
		text = string(after)
	}
	return code, text, true
}

// protocolErrorDetail is the detail of an answer net/http gives before any
// handler runs.
func protocolErrorDetail(code int, text string, maxHeaderBytes int) string {
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		return fmt.Sprintf("Request headers too large: at most %d bytes.", maxHeaderBytes)
	case http.StatusNotImplemented:
		return "Unsupported transfer encoding."
	case http.StatusHTTPVersionNotSupported:
		return "HTTP version not supported: " + text + "."
	case http.StatusExpectationFailed:
		return "Expectation failed: only Expect: 100-continue is supported."
	case http.StatusBadRequest:
		if text == "" {
			return "Bad request: malformed request line or headers."
		}
		return "Bad request: " + text + "."
	}
	if text != "" {
		return sentence(http.StatusText(code) + ": " + text)
	}
	return http.StatusText(code) + "."
}
