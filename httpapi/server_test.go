package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/verify"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := httpapi.Config{}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.Tenants is required")
	assert.Contains(t, err.Error(), "Config.Verify is required")
	_, err = httpapi.New(httpapi.Config{})
	require.Error(t, err)
}

// TestRouteTableGuardsNew checks that New refuses a route without a table
// entry, an entry without a route, and an unknown scope.
func TestRouteTableGuardsNew(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cfg := httpapi.Config{
		Tenants: s.reg,
		Verify:  func(context.Context, string) (verify.Report, error) { return verify.Report{}, nil },
	}
	tests := []struct {
		name   string
		change func(map[string]keys.Scope)
		want   string // "" means New succeeds
	}{
		{"complete table", func(map[string]keys.Scope) {}, ""},
		{"route without entry", func(m map[string]keys.Scope) { delete(m, "GET /v1/keys") },
			"route GET /v1/keys has no entry in the route table"},
		{"probe without entry", func(m map[string]keys.Scope) { delete(m, "GET /healthz") },
			"route GET /healthz has no entry in the route table"},
		{"entry without route", func(m map[string]keys.Scope) { m["POST /v1/nothing-here"] = keys.ScopeEvaluate },
			"route table entry POST /v1/nothing-here has no registered route"},
		{"unknown scope", func(m map[string]keys.Scope) { m["DELETE /v1/keys/:key_id"] = "root" },
			`route table entry DELETE /v1/keys/:key_id: unknown scope "root"`},
		{"empty scope", func(m map[string]keys.Scope) { m["GET /v1/keys"] = "" },
			`route table entry GET /v1/keys: unknown scope ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			table := httpapi.RouteScopes()
			tt.change(table)
			srv, err := httpapi.NewWithRouteTable(cfg, table)
			if tt.want == "" {
				require.NoError(t, err)
				require.NotNil(t, srv.Handler())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	notReady := errors.New("store is replaying")
	storeFailed := fmt.Errorf("%w: write /var/lib/custos-secret/000004.log: no space left on device", eventstore.ErrStoreFailed)
	tests := []struct {
		name   string
		ready  func() error
		path   string
		key    string
		status int
		body   string
	}{
		{"healthz", nil, "/healthz", "", 200, `{"status":"ok"}`},
		{"healthz ignores a bad key", nil, "/healthz", "garbage", 200, `{"status":"ok"}`},
		{"readyz without Ready", nil, "/readyz", "", 200, `{"status":"ready"}`},
		{"readyz ready", func() error { return nil }, "/readyz", "", 200, `{"status":"ready"}`},
		{"readyz not ready", func() error { return notReady }, "/readyz", "", 503, `{"detail":"Not ready; the server log has the cause."}`},
		{"readyz store failed", func() error { return storeFailed }, "/readyz", "", 503, `{"detail":"Not ready: the store has failed; the server log has the cause."}`},
		{"healthz while not ready", func() error { return notReady }, "/healthz", "", 200, `{"status":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, withReady(tt.ready))
			r := s.get(t, tt.path, tt.key)
			require.Equal(t, tt.status, r.status)
			assert.JSONEq(t, tt.body, string(r.body))
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			if tt.status != http.StatusOK {
				assert.NotContains(t, string(r.body), "/var/lib", "no path in the answer")
				assert.Contains(t, s.logs.String(), tt.ready().Error(), "the cause is in the log")
			}
		})
	}
}

// TestUnroutedRequests checks that unknown routes and methods answer JSON
// errors, with or without a key.
func TestUnroutedRequests(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tests := []struct {
		method, path string
		status       int
		detail       string
		allow        string
	}{
		{"GET", "/nope", 404, "Not found.", ""},
		{"GET", "/v1/keys/a/b", 404, "Not found.", ""},
		{"POST", "/v1/audit", 404, "Not found.", ""},
		{"PUT", "/v1/keys", 405, "Method PUT is not allowed here; allowed: GET, POST.", "GET, POST"},
		{"DELETE", "/v1/keys", 405, "Method DELETE is not allowed here; allowed: GET, POST.", "GET, POST"},
		{"PATCH", "/v1/keys/key_x", 405, "Method PATCH is not allowed here; allowed: DELETE, GET.", "DELETE, GET"},
		{"OPTIONS", "/v1/keys", 405, "Method OPTIONS is not allowed here; allowed: GET, POST.", "GET, POST"},
		{"POST", "/healthz", 405, "Method POST is not allowed here; allowed: GET.", "GET"},
		{"GET", "/v1/keys/key_x/rotate", 405, "Method GET is not allowed here; allowed: POST.", "POST"},
	}
	for _, tt := range tests {
		for _, key := range []string{"", s.admin} {
			t.Run(fmt.Sprintf("%s %s key=%t", tt.method, tt.path, key != ""), func(t *testing.T) {
				t.Parallel()
				r := s.do(t, request{method: tt.method, path: tt.path, key: key})
				require.Equal(t, tt.status, r.status, "body %s", r.body)
				assert.Equal(t, tt.detail, r.detail(t))
				assert.Equal(t, tt.allow, r.header.Get("Allow"))
			})
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"none sent", "", false},
		{"echoed", "req-123_abc.def:9", true},
		{"longest accepted", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"unsafe characters", "a b\"c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request{method: "GET", path: "/v1/keys", key: s.admin}
			if tt.sent != "" {
				req.header = map[string]string{"X-Request-Id": tt.sent}
			}
			r := s.do(t, req)
			got := r.header.Get("X-Request-Id")
			if tt.echoed {
				assert.Equal(t, tt.sent, got)
			} else {
				assert.Regexp(t, generated, got)
			}
			assert.Contains(t, s.logs.String(), `"request_id":"`+got+`"`)
		})
	}
}

func TestAPIKeyHeader(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tests := []struct {
		name   string
		values []string
		status int
		detail string
	}{
		{"none", nil, 401, "Missing API key."},
		{"empty", []string{""}, 401, "Missing API key."},
		{"two values", []string{s.admin, s.admin}, 403, "Invalid or revoked API key."},
		{"lower-case key", []string{strings.ToLower(s.admin)}, 403, "Invalid or revoked API key."},
		{"key with suffix", []string{s.admin + "x"}, 403, "Invalid or revoked API key."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/v1/keys", nil)
			require.NoError(t, err)
			for _, v := range tt.values {
				req.Header.Add("X-API-Key", v)
			}
			resp, err := s.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var body struct{ Detail string }
			require.NoError(t, jsonDecode(resp, &body))
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.detail, body.Detail)
		})
	}
}

// TestErrorMapping checks the central mapping on wrapped and joined errors.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err)) }
	tests := []struct {
		name   string
		err    error
		status int
		detail string
	}{
		{"not found", wrap(keys.ErrNotFound), 404, "Key not found."},
		{"conflict", wrap(keys.ErrConflict), 409, "Conflict with the key's current state."},
		{"revoked", wrap(keys.ErrRevoked), 409, "Key is already revoked."},
		{"expired", keys.ErrExpired, 409, "Key has expired."},
		{"rotated", wrap(keys.ErrRotated), 409, "Key was already rotated; it only lives until its grace window ends."},
		{"invalid key", wrap(keys.ErrInvalidKey), 403, "Invalid or revoked API key."},
		{"validation", wrap(&keys.ValidationError{Field: "name", Problem: "must not be empty"}), 422, "Invalid request: name must not be empty."},
		{"joined validation", errors.Join(&keys.ValidationError{Field: "name", Problem: "must not be empty"},
			wrap(&keys.ValidationError{Field: "scope", Problem: "must be one of admin, read, evaluate"})),
			422, "Invalid request: name must not be empty; scope must be one of admin, read, evaluate."},
		{"store failed", wrap(fmt.Errorf("%w: disk full", eventstore.ErrStoreFailed)), 503, "audit log unavailable"},
		{"store closed", wrap(eventstore.ErrClosed), 503, "audit log unavailable"},
		{"store failure beats other errors", errors.Join(keys.ErrNotFound, eventstore.ErrStoreFailed), 503, "audit log unavailable"},
		{"fenced", wrap(fmt.Errorf("%w: another node appended first", eventstore.ErrFenced)), 503,
			"This node stopped sequencing the chain before the change was recorded; nothing was recorded, retry."},
		{"store failure beats a fence", errors.Join(eventstore.ErrFenced, eventstore.ErrStoreFailed), 503, "audit log unavailable"},
		{"derived data failed", wrap(fmt.Errorf("%w: folder removed", eventstore.ErrDerivedFailed)), 503,
			"Audit index unavailable: the server's derived data failed; decisions are still recorded. Restart the server to rebuild the index."},
		{"echo error", echo.NewHTTPError(http.StatusTeapot, "short and stout"), 418, "short and stout"},
		{"wrapped echo error", wrap(echo.NewHTTPError(http.StatusConflict, "busy")), 409, "busy"},
		{"echo error without message", &echo.HTTPError{Code: http.StatusBadGateway}, 502, "Bad Gateway"},
		{"anything else", errors.New("boom: /var/secret/path"), 500, "Internal server error."},
		{"malformed id is a bug", wrap(keys.ErrMalformedID), 500, "Internal server error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, detail := httpapi.StatusOf(tt.err)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.detail, detail)
		})
	}
}

// TestVerifyErrors checks GET /v1/audit/verify with a failing and a broken
// verifier.
func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	broken := "01J0000000000000000000BAD0"
	tests := []struct {
		name   string
		verify func(context.Context, string) (verify.Report, error)
		status int
		check  func(t *testing.T, r response)
	}{
		{"read failed", func(context.Context, string) (verify.Report, error) {
			return verify.Report{}, fmt.Errorf("verify default: %w", eventstore.ErrClosed)
		}, 503, func(t *testing.T, r response) { assert.Equal(t, "audit log unavailable", r.detail(t)) }},
		{"unexpected error", func(context.Context, string) (verify.Report, error) {
			return verify.Report{}, errors.New("disk on fire")
		}, 500, func(t *testing.T, r response) { assert.Equal(t, "Internal server error.", r.detail(t)) }},
		{"verifier panics", func(context.Context, string) (verify.Report, error) {
			panic("pebble: closed")
		}, 500, func(t *testing.T, r response) { assert.Equal(t, "Internal server error.", r.detail(t)) }},
		{"broken chain is a 200", func(context.Context, string) (verify.Report, error) {
			return verify.Report{Valid: false, Total: 3, Chained: 1, BrokenAt: &broken}, nil
		}, 200, func(t *testing.T, r response) {
			m := r.object(t)
			assert.Equal(t, false, m["valid"])
			assert.Equal(t, broken, m["broken_at"])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, err := httpapi.New(httpapi.Config{Tenants: s.reg, Verify: tt.verify, Logger: s.logger})
			require.NoError(t, err)
			srv := newHTTPServer(t, api.Handler())
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/verify", nil)
			require.NoError(t, err)
			req.Header.Set("X-API-Key", s.admin)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			r := readResponse(t, resp)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			tt.check(t, r)
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		assert.NotContains(t, s.logs.String(), s.admin)
		assert.Contains(t, s.logs.String(), "disk on fire", "the real cause of a 500 is logged")
		assert.Contains(t, s.logs.String(), "panic in handler: pebble: closed")
	})
}
