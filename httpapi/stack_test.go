package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

// t0 is when every test's clock starts.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t, which must not lie before the current reading
// (record times never decrease along a chain).
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		panic("fakeClock: time must not go backwards")
	}
	c.now = t
}

// stack is a real custos HTTP stack: a Pebble store on disk, a Ledger on an
// injected clock, the httpapi Server and an httptest.Server on 127.0.0.1.
type stack struct {
	t      testing.TB
	dir    string
	clock  *fakeClock
	logs   *eventstoretest.Buffer
	logger *slog.Logger
	ready  func() error
	// backupDir is Config.BackupDir: online backups land under it.
	backupDir string
	// alerts is Config.Alerts.
	alerts httpapi.AlertHooks
	// signer, if set, signs the store's checkpoints (default a new key;
	// withoutSigner clears it).
	signer *checkpoint.Signer
	// tracer, if set, is the store's and the server's TracerProvider.
	tracer trace.TracerProvider
	// traceRequest is Config.TraceRequest (withTraceRequest).
	traceRequest func(parent trace.SpanContext) bool
	// cluster and minSeqWait are Config.Cluster and Config.MinSeqWait.
	cluster    httpapi.Cluster
	minSeqWait time.Duration
	// cosigned is Config.Cosigned.
	cosigned func(chain string) []byte

	store   *eventstore.Store
	ledger  *writeside.Ledger // tenant default's
	reg     *tenancy.Registry // every tenant; default is the stack's own
	metrics *metrics.Metrics  // new with every open, like a process restart
	index   *readside.Index
	// stopIndex stops the index goroutine and waits for it.
	stopIndex func()
	srv       *httptest.Server
	closed    bool

	admin   string // bootstrap admin key (plaintext)
	adminID string
	// superadmin is the deployment's superadmin key (plaintext), minted
	// at the first open.
	superadmin string
}

type stackOption func(*stack)

// withLogLevel sets the level of the stack's one logger (default debug).
func withLogLevel(l slog.Level) stackOption {
	return func(s *stack) {
		s.logger = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: l}))
	}
}

// withAlerts sets Config.Alerts.
func withAlerts(h httpapi.AlertHooks) stackOption { return func(s *stack) { s.alerts = h } }

// withTracing sets the TracerProvider of the store and the server.
func withTracing(tp trace.TracerProvider) stackOption { return func(s *stack) { s.tracer = tp } }

// withTraceRequest sets Config.TraceRequest.
func withTraceRequest(f func(parent trace.SpanContext) bool) stackOption {
	return func(s *stack) { s.traceRequest = f }
}

// withCluster sets Config.Cluster and Config.MinSeqWait.
func withCluster(c httpapi.Cluster, minSeqWait time.Duration) stackOption {
	return func(s *stack) { s.cluster, s.minSeqWait = c, minSeqWait }
}

// withCosigned sets Config.Cosigned.
func withCosigned(f func(chain string) []byte) stackOption { return func(s *stack) { s.cosigned = f } }

// withReady sets Config.Ready.
func withReady(f func() error) stackOption { return func(s *stack) { s.ready = f } }

// newStack starts a stack in a new temporary folder and bootstraps the
// first admin key. Everything is closed when the test ends.
func newStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	logs := &eventstoretest.Buffer{}
	s := &stack{
		t:         t,
		dir:       t.TempDir(),
		clock:     newFakeClock(t0),
		backupDir: t.TempDir(),
		logs:      logs,
		logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		signer:    newTestSigner(t),
	}
	for _, o := range opts {
		o(s)
	}
	s.open(true)
	t.Cleanup(s.close)
	created, key, _, err := s.ledger.CreateKey(context.Background(), writeside.ActorInit,
		keys.CreateCommand{Name: "bootstrap", Scope: "admin"})
	require.NoError(t, err)
	s.admin, s.adminID = key, created.KeyID
	// Agents that evaluate keys in these tests are bound to.
	for _, id := range []string{"loan-agent", "a-1"} {
		_, err := s.ledger.RegisterAgent(context.Background(), writeside.ActorInit,
			agents.RegisterCommand{AgentID: id, AgentRole: "loan_officer"})
		require.NoError(t, err)
	}
	return s
}

func (s *stack) open(create bool) {
	s.t.Helper()
	m := metrics.New()
	store, err := eventstore.Open(eventstore.Options{Dir: s.dir, CreateIfMissing: create, Logger: s.logger,
		CommitObserver: m.ObserveCommit, Signer: s.signer, TracerProvider: s.tracer})
	require.NoError(s.t, err)
	reg, err := tenancy.Open(context.Background(), tenancy.Config{Store: store, Logger: s.logger,
		Ledger: writeside.Config{Clock: s.clock.Now, Logger: s.logger}})
	if err != nil {
		_ = store.Close()
		require.NoError(s.t, err)
	}
	if _, err = reg.EnsureDefault(context.Background()); err == nil && !reg.HasSuperadminKey() {
		s.superadmin, _, err = reg.CreateSuperadminKey(context.Background(), writeside.ActorInit, "stack-superadmin")
	}
	def, _ := reg.Tenant(tenants.DefaultID)
	if err == nil {
		err = m.Track(def.Ledger, func() (uint64, error) {
			h, err := store.Head(eventstore.DefaultChain)
			return h.Seq, err
		})
	}
	if err != nil {
		_ = reg.Close()
		_ = store.Close()
		require.NoError(s.t, err)
	}
	ledger, index := def.Ledger, def.Index
	s.reg, s.index, s.stopIndex = reg, index, func() { _ = reg.Close() }
	api, err := httpapi.New(httpapi.Config{
		Tenants: reg,
		Verify: func(ctx context.Context, chain string) (verify.Report, error) {
			return verify.Store(ctx, store, chain)
		},
		Ready:       s.ready,
		Logger:      s.logger,
		Metrics:     m,
		Backup:      func(_ context.Context, dir string) error { return store.Checkpoint(dir) },
		BackupDir:   s.backupDir,
		Alerts:      s.alerts,
		Evidence:    store,
		VerifierKey: vkeyOf(s.signer),
		Cosigned:    s.cosigned,

		TracerProvider: s.tracer,
		TraceRequest:   s.traceRequest,
		Cluster:        s.cluster,
		MinSeqWait:     s.minSeqWait,
	})
	if err != nil {
		_ = reg.Close()
		_ = store.Close()
		require.NoError(s.t, err)
	}
	s.store, s.ledger, s.metrics, s.srv, s.closed = store, ledger, m, httptest.NewServer(api.Handler()), false
}

// close stops the HTTP server, then closes the store. Safe to call twice.
func (s *stack) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.srv.Close()
	s.stopIndex()
	require.NoError(s.t, s.store.Close())
}

// restart closes everything and opens the same folder again: new store,
// Ledger and server.
func (s *stack) restart() {
	s.t.Helper()
	s.close()
	s.open(false)
}

// head returns the durable head seq of the default chain.
func (s *stack) head(t *testing.T) uint64 {
	t.Helper()
	h, err := s.store.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	return h.Seq
}

// createKey creates a key through the Ledger (not HTTP) and returns its id
// and plaintext.
func (s *stack) createKey(t *testing.T, name, scope string, expiresDays int) (id, key string) {
	t.Helper()
	cmd := keys.CreateCommand{Name: name, Scope: scope}
	if expiresDays > 0 {
		cmd.ExpiresDays = &expiresDays
	}
	created, key, _, err := s.ledger.CreateKey(context.Background(), writeside.ActorInit, cmd)
	require.NoError(t, err)
	return created.KeyID, key
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// detail returns the body's detail, requiring the body to be exactly
// {"detail": "..."}.
func (r response) detail(t *testing.T) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	require.Len(t, m, 1, "error body must hold only detail: %s", r.body)
	d, ok := m["detail"].(string)
	require.True(t, ok, "detail must be a string: %s", r.body)
	return d
}

// object decodes the body as one JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

// request describes one HTTP call.
type request struct {
	method, path string
	key          string // X-API-Key; "" sends none
	body         string // sent as application/json unless contentType is set
	contentType  string // default application/json when there is a body
	noType       bool   // send no Content-Type at all
	header       map[string]string
	reader       io.Reader // a body of unknown length (chunked), instead of body
}

func (s *stack) do(t *testing.T, r request) response {
	t.Helper()
	var body io.Reader
	switch {
	case r.reader != nil:
		body = r.reader
	case r.body != "":
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, s.srv.URL+r.path, body)
	require.NoError(t, err)
	if r.key != "" {
		req.Header.Set("X-API-Key", r.key)
	}
	switch {
	case r.noType:
	case r.contentType != "":
		req.Header.Set("Content-Type", r.contentType)
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return readResponse(t, resp)
}

func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// newHTTPServer serves h on 127.0.0.1 until the test ends.
func newHTTPServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get is a GET with a key.
func (s *stack) get(t *testing.T, path, key string) response {
	t.Helper()
	return s.do(t, request{method: http.MethodGet, path: path, key: key})
}

// postJSON posts body with a key.
func (s *stack) postJSON(t *testing.T, path, key, body string) response {
	t.Helper()
	return s.do(t, request{method: http.MethodPost, path: path, key: key, body: body})
}

func (s *stack) del(t *testing.T, path, key string) response {
	t.Helper()
	return s.do(t, request{method: http.MethodDelete, path: path, key: key})
}

// mustCreate creates a key over HTTP with the admin key and returns the 201
// body.
func (s *stack) mustCreate(t *testing.T, body string) map[string]any {
	t.Helper()
	r := s.postJSON(t, "/v1/keys", s.admin, body)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	return r.object(t)
}

func ptr[T any](v T) *T { return &v }

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// waitUsed waits until the key.used that a successful request by keyID
// recorded asynchronously is durable, so that the chain's head stays put
// for the rest of the minute (a key's use is recorded at most once a
// minute, and the stack's clock only moves when the test moves it).
func (s *stack) waitUsed(t *testing.T, keyID string) {
	t.Helper()
	require.Eventually(t, func() bool {
		used := false
		_ = s.store.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
			used = used || r.Type == keys.TypeKeyUsed && r.Actor == keyID
			return nil
		})
		return used
	}, 5*time.Second, time.Millisecond, "key.used of %s", keyID)
}
