package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/verify"
)

// Config configures a Server.
type Config struct {
	// Tenants is the deployment's tenants: every key authenticates on
	// its own tenant's chain and acts on it alone (its Ledger changes, its
	// Index answers audit queries, exports and as_of reads), and superadmin
	// keys use the /v1/tenants routes and online backups. Required; the
	// caller opens and closes it.
	Tenants *tenancy.Registry
	// Verify checks chain (a tenant's) for GET /v1/audit/verify.
	// Required.
	Verify func(ctx context.Context, chain string) (verify.Report, error)
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
	// Backup writes a consistent copy of the store into dir (an absolute
	// path that does not exist yet; it creates the folder) while appends go
	// on. httpapi never touches the store itself; serve wires this to
	// eventstore.Store.Checkpoint. With BackupDir it serves POST
	// /v1/admin/backup. Default nil: the route answers 403.
	Backup func(ctx context.Context, dir string) error
	// BackupDir is the folder online backups are written under: POST
	// /v1/admin/backup {"name": NAME} writes BackupDir/NAME, and a request
	// names nothing else. Absolute, and an existing folder; the caller
	// keeps it outside the data folder (serve refuses one inside). Default
	// "": the route answers 403 saying how to enable it.
	BackupDir string
	// Evidence serves the signed checkpoints and Merkle proofs of the log
	// (GET /v1/audit/checkpoint and /v1/audit/proof/...); serve passes the
	// store. Default nil: those routes answer 404.
	Evidence EvidenceLog
	// Cosigned returns chain's latest checkpoint that a quorum of
	// witnesses cosigned (the signed note with their cosignature lines),
	// or nil. When it returns one, GET /v1/audit/checkpoint (for a
	// tenant's keys, and a superadmin's on the tenant's routes) serves it
	// instead of the newer one that no witness has seen yet, and receipts
	// use it when it covers their event. Called concurrently. Default nil:
	// no witnesses.
	Cosigned func(chain string) []byte
	// VerifierKey returns the note verifier key of chain's checkpoints
	// (each tenant's chain has its own key, eventstore.Store's
	// ChainVerifierKey), served on GET /v1/audit/vkey to that tenant's
	// keys. Called concurrently; an error is a 500. Default nil: 404.
	VerifierKey func(chain string) (string, error)
	// Limits bound what clients can hold of the server (deadlines, header
	// size, connections, requests in flight). Default: every field's
	// default (see Limits).
	Limits Limits
	// Alerts connects the alerts engine (invalid-key counts, dead
	// letters). Default: no counting, an empty dead-letter list.
	Alerts AlertHooks
	// TracerProvider, if set, traces every request with otelhttp as a
	// server span named "METHOD /route" (the registered path, never the
	// raw URL; url.path is the route too, so path parameters such as key
	// ids are not exported), with the decision attributes on evaluations (see
	// tracing.go). Its span context reaches the Ledger's appends through
	// the request's context. Default nil: no spans and no instrumentation
	// in the handler chain at all.
	TracerProvider trace.TracerProvider
	// Propagator extracts an incoming trace context (traceparent) when
	// TracerProvider is set. Default: W3C trace context (baggage from
	// callers is not taken: nothing in custos reads it).
	Propagator propagation.TextMapPropagator
	// TraceRequest, with TracerProvider, decides for each request before
	// any span exists whether it is traced, from the caller's span context
	// (not valid when the request carries none): the head sampling of
	// OTEL_TRACES_SAMPLER, made here so that a request it turns down runs
	// without otelhttp's wrappers, at what tracing off costs. The provider
	// must then sample every span it is asked for (sdktrace.AlwaysSample):
	// the decision is already made. Nil traces every request through
	// otelhttp and leaves the decision to the provider's sampler. Safe for
	// concurrent use.
	TraceRequest func(parent trace.SpanContext) bool
	// Cluster, set on a node of a cluster (serve --nats), makes the node
	// forward writes to the chain's sequencer, serve GET /v1/cluster and
	// show its role in /readyz (see cluster.go). Default nil: a single
	// node, GET /v1/cluster answers 404.
	Cluster Cluster
	// MinSeqWait bounds how long a read with min_seq waits for this node
	// to show the chain through it before answering 503. Default 5s.
	MinSeqWait time.Duration
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Tenants == nil {
		errs = append(errs, errors.New("httpapi: Config.Tenants is required"))
	}
	if c.Verify == nil {
		errs = append(errs, errors.New("httpapi: Config.Verify is required"))
	}
	if c.BackupDir != "" && !filepath.IsAbs(c.BackupDir) {
		errs = append(errs, fmt.Errorf("httpapi: Config.BackupDir must be absolute, got %q", c.BackupDir))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Limits = c.Limits.WithDefaults()
	if c.Propagator == nil {
		c.Propagator = propagation.TraceContext{}
	}
	if c.MinSeqWait <= 0 {
		c.MinSeqWait = 5 * time.Second
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
	handler http.Handler          // the limiter in front of echo
	http    *http.Server          // what Serve runs
	bodies  bodies                // reads request bodies, with its caches
	gate    *fairGate             // tenants' turns at being worked on
	proxies proxies               // to the sequencers, for a node of a cluster
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
	l := s.cfg.Limits
	s.gate = newFairGate(l.MaxActive, l.TenantMaxActive, l.TenantMaxInFlight)
	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Order: request id, then the access log (it hands errors to the error
	// handler so it can log the final status), then panic recovery, then
	// the route table.
	// With tracing, otelhttp's span encloses echo (s.traced below), and
	// traceRoute names it by route before anything else runs.
	if s.cfg.TracerProvider != nil {
		e.Use(traceRoute)
	}
	e.Use(s.requestID, s.accessLog, s.recoverPanic, s.clusterRoute, s.authorize)
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
	s.handler = &limiter{limits: s.cfg.Limits, next: s.traced(e)}
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// No ReadTimeout or WriteTimeout: they would bound whole requests
		// and responses (and a read deadline hit after the body cancels
		// the request's context); the limiter sets per-request body and
		// per-write deadlines instead.
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if c, ok := c.(*conn); ok {
				return context.WithValue(ctx, connContextKey{}, c)
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if c, ok := c.(*conn); ok && st == http.StateIdle {
				c.idle()
			}
		},
	}
	return s, nil
}

// Handler returns the http.Handler that serves the API, with the
// per-request limits of Config.Limits (body and write deadlines, requests
// in flight). Serve adds the rest; a caller serving Handler itself must set
// its own header timeout, header size limit and connection cap.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on ln with every limit of Config.Limits until
// Shutdown, like http.Server.Serve: it returns http.ErrServerClosed after
// Shutdown. It takes ownership of ln. Call it once.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(newListener(ln, s.cfg.Limits, s.cfg.Logger))
}

// Shutdown stops accepting connections and waits until the requests in
// flight are answered or ctx is done, like http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

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
		if scope := table[id]; scope != noAuth && scope != keys.ScopeSuperadmin {
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
