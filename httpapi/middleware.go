package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
)

// Header names.
const (
	headerAPIKey    = "X-API-Key"
	headerRequestID = echo.HeaderXRequestID // "X-Request-Id"
)

// Context keys for values the middleware hands to handlers.
const (
	ctxKey       = "custos.key"        // keys.Key of the authenticated caller
	ctxRequestID = "custos.request_id" // string
)

// maxRequestIDLength bounds an X-Request-Id taken from the client.
const maxRequestIDLength = 128

// requestID takes X-Request-Id from the request when it is short and
// printable (so it is safe to log), generates one otherwise, and echoes it in
// the response.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(headerRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(headerRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			strings.IndexByte("-_.:/+=", b) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// accessLog writes one line per request after the error handler has
// answered, so the status is the one the client saw: at info, except
// answered evaluations (debug: the chain records them) and 5xx (warn). It
// never logs headers: the X-API-Key value must not reach the log.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelWarn
		case status < 400 && c.Path() == evaluatePath:
			// Every answered evaluation is already a durable decision.made
			// in the chain, with the key, time and outcome: a line per
			// decision would repeat the audit log at thousands per second.
			level = slog.LevelDebug
		}
		// Straight to the handler: Logger.LogAttrs would also capture the
		// caller's pc (runtime.Callers) for a source that is always here.
		ctx, h := c.Request().Context(), s.cfg.Logger.Handler()
		if !h.Enabled(ctx, level) {
			return nil
		}
		var keyID string
		if k, ok := authenticated(c); ok {
			keyID = k.KeyID
		}
		now := time.Now()
		r := slog.NewRecord(now, level, "http request", 0)
		r.AddAttrs(
			slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.Int("status", status),
			slog.Duration("latency", now.Sub(start)),
			slog.String("request_id", requestIDOf(c)),
			slog.String("key_id", keyID),
		)
		_ = h.Handle(ctx, r)
		return nil
	}
}

// recoverPanic turns a handler panic into a 500 (logged with its stack by
// the error handler) instead of a dropped connection.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("httpapi: panic in handler: %v\n%s", r, debug.Stack())
			}
		}()
		return next(c)
	}
}

// authorize enforces the route table: it is the only place that decides who
// may call a route. Requests for routes that are not in the table never reach
// a handler: they get 404, or 405 when the path exists with other methods.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Method + " " + c.Path()
		need, ok := s.scopes[id]
		if !ok {
			return s.unrouted(c)
		}
		// Every routed request passes here, so path parameters are checked
		// here too, before a key or a handler sees them.
		if err := checkPathParams(c); err != nil {
			return err
		}
		if need == noAuth {
			return next(c)
		}
		presented := req.Header.Values(headerAPIKey)
		switch {
		case len(presented) == 0 || len(presented) == 1 && presented[0] == "":
			return echo.NewHTTPError(http.StatusUnauthorized, "Missing API key.")
		case len(presented) > 1:
			return keys.ErrInvalidKey // ambiguous: never guess which one counts
		}
		p, err := s.cfg.Tenants.Authenticate(presented[0])
		if errors.Is(err, tenants.ErrTenantSuspended) {
			return echo.NewHTTPError(http.StatusForbidden, detailSuspended(p.Tenant.ID))
		}
		if err != nil {
			s.countInvalidKey(req, presented[0]) // alerts.go: counted, never appended
			return err
		}
		key := p.Key
		c.Set(ctxKey, key)
		c.Set(ctxPrincipal, p)
		if !key.Scope.Allows(need) {
			return echo.NewHTTPError(http.StatusForbidden,
				fmt.Sprintf("Insufficient scope: %s requires %s.", id, need))
		}
		if p.Superadmin() {
			return next(c) // the system chain records what a superadmin does, not its reads
		}
		if err := s.checkMinSeq(c, p.Tenant.Ledger); err != nil {
			return err
		}
		if err := s.admit(c, p.Tenant.ID); err != nil {
			return err
		}
		defer s.gate.leave(p.Tenant.ID)
		ledger := p.Tenant.Ledger
		if !keys.ShouldRecordUse(key, ledger.Now()) {
			return next(c) // use recorded less than a minute ago: nothing to add
		}
		resp := c.Response()
		resp.Before(func() {
			// Only successful requests count as use, so a rejected request
			// appends nothing. Recorded before the status line is written,
			// so the caller's next request already sees it.
			if resp.Status < http.StatusBadRequest {
				ledger.RecordUse(context.WithoutCancel(req.Context()), key)
			}
		})
		return next(c)
	}
}

// unrouted answers a request that matched no route of the table.
func (s *Server) unrouted(c echo.Context) error {
	if methods, ok := s.allow[c.Path()]; ok {
		c.Response().Header().Set(echo.HeaderAllow, strings.Join(methods, ", "))
		return echo.NewHTTPError(http.StatusMethodNotAllowed,
			fmt.Sprintf("Method %s is not allowed here; allowed: %s.", c.Request().Method, strings.Join(methods, ", ")))
	}
	return echo.NewHTTPError(http.StatusNotFound, "Not found.")
}

// authenticated returns the key that authenticated the request, if any.
func authenticated(c echo.Context) (keys.Key, bool) {
	k, ok := c.Get(ctxKey).(keys.Key)
	return k, ok
}

// errNoCaller means a handler that needs a caller ran without one: a route
// table bug. It answers 500.
var errNoCaller = errors.New("httpapi: handler needs an authenticated key but the request has none")

// actor returns the id of the calling key, recorded as the actor of the
// change.
func actor(c echo.Context) (string, error) {
	k, ok := authenticated(c)
	if !ok {
		return "", errNoCaller
	}
	return k.KeyID, nil
}

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// maxAdmissionWait bounds how long a request waits for its tenant's turn
// (fairGate) before a 503.
const maxAdmissionWait = 10 * time.Second

// admit waits for the request's turn to be worked on (fairGate). It
// answers 429 when the tenant holds its share of requests already, and 503
// when the turn does not come within maxAdmissionWait.
func (s *Server) admit(c echo.Context, tenant string) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), maxAdmissionWait)
	defer cancel()
	err := s.gate.enter(ctx, tenant)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTenantFull):
		c.Response().Header().Set("Retry-After", "1")
		return echo.NewHTTPError(http.StatusTooManyRequests,
			fmt.Sprintf("Tenant %s has %d requests in flight, its share of this server; retry shortly.", tenant, s.gate.perTenant))
	default:
		c.Response().Header().Set("Retry-After", "1")
		return echo.NewHTTPError(http.StatusServiceUnavailable, "The server is busy; retry shortly.")
	}
}
