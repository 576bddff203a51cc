package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

// Config configures a Server.
type Config struct {
	// Ledger holds the live key state and appends every change. Required.
	Ledger *writeside.Ledger
	// Verify checks the live chain for GET /v1/audit/verify. Required.
	Verify func(ctx context.Context) (verify.Report, error)
	// Index answers audit queries, exports and point-in-time (as_of)
	// reads. Required; the caller runs it (Index.Run).
	Index *readside.Index
	// Ready reports whether the process may take traffic (GET /readyz): nil
	// means ready. Default: a nil Ready means always ready.
	Ready func() error
	// Logger receives one access line per request and every 5xx cause.
	// Default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, is served on GET /metrics (no key needed) and counts
	// decisions and verify results. Default nil: GET /metrics answers 404.
	// The caller wires the store and Ledger side (metrics.Metrics.Track,
	// eventstore.Options.CommitObserver).
	Metrics *metrics.Metrics
	// Backup, if set, writes a consistent copy of the store into dir (an
	// absolute path that must not exist; an error matching fs.ErrExist when
	// it does) while appends go on: POST /v1/admin/backup. Default nil: the
	// route answers 404. httpapi never touches the store itself; serve wires
	// this to eventstore.Store.Checkpoint.
	Backup func(ctx context.Context, dir string) error
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Ledger == nil {
		errs = append(errs, errors.New("httpapi: Config.Ledger is required"))
	}
	if c.Verify == nil {
		errs = append(errs, errors.New("httpapi: Config.Verify is required"))
	}
	if c.Index == nil {
		errs = append(errs, errors.New("httpapi: Config.Index is required"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves the custos HTTP API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	echo    *echo.Echo
	scopes  map[string]keys.Scope // "METHOD /route" -> scope required, or noAuth
	allow   map[string][]string   // route path -> methods registered on it
	openapi []byte                // docs/openapi.yaml as JSON, for GET /openapi.json
}

// New returns a Server for cfg. It fails when cfg is invalid or the routes
// and the route table disagree.
func New(cfg Config) (*Server, error) {
	return newServer(cfg, routeScopes())
}

// newServer is New with the route table given, so tests can check that a
// route without an entry is refused.
func newServer(cfg Config, table map[string]keys.Scope) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg.withDefaults(),
		echo:    echo.New(),
		scopes:  make(map[string]keys.Scope, len(table)),
		allow:   make(map[string][]string),
		openapi: spec,
	}
	for route, scope := range table {
		s.scopes[route] = scope
	}
	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Order: request id, then the access log (it hands errors to the error
	// handler so it can log the final status), then panic recovery, then
	// the route table.
	e.Use(s.requestID, s.accessLog, s.recoverPanic, s.authorize)
	for _, r := range s.routes() {
		e.Add(r.method, r.path, r.handler)
		s.allow[r.path] = append(s.allow[r.path], r.method)
	}
	for _, methods := range s.allow {
		slices.Sort(methods)
	}
	if err := checkRouteTable(e.Routes(), s.scopes); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the http.Handler that serves the API.
func (s *Server) Handler() http.Handler { return s.echo }

// checkRouteTable reports every registered route without a table entry,
// every entry without a route, and every entry with an unknown scope.
func checkRouteTable(routes []*echo.Route, table map[string]keys.Scope) error {
	var errs []error
	registered := make(map[string]bool, len(routes))
	for _, r := range routes {
		id := r.Method + " " + r.Path
		registered[id] = true
		if _, ok := table[id]; !ok {
			errs = append(errs, fmt.Errorf("httpapi: route %s has no entry in the route table", id))
		}
	}
	ids := make([]string, 0, len(table))
	for id := range table {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !registered[id] {
			errs = append(errs, fmt.Errorf("httpapi: route table entry %s has no registered route", id))
		}
		if scope := table[id]; scope != noAuth {
			if _, err := keys.ParseScope(string(scope)); err != nil {
				errs = append(errs, fmt.Errorf("httpapi: route table entry %s: unknown scope %q", id, scope))
			}
		}
		if method, path, ok := strings.Cut(id, " "); !ok || method == "" || !strings.HasPrefix(path, "/") {
			errs = append(errs, fmt.Errorf("httpapi: route table entry %q is not \"METHOD /path\"", id))
		}
	}
	return errors.Join(errs...)
}
