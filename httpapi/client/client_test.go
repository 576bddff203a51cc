package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

var keyPattern = regexp.MustCompile(keys.Pattern)

// server is a real custos stack: a Pebble store in t.TempDir(), the
// projections, the httpapi Server and an httptest.Server.
type server struct {
	url   string
	admin string // bootstrap admin key
	// superadmin is the deployment's superadmin key (online backups).
	superadmin string
	store      *eventstore.Store
	// backupDir is the server's backup folder.
	backupDir string
}

func newServer(t *testing.T) *server {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() }) // runs last: after the server and the index stopped
	reg, err := tenancy.Open(context.Background(), tenancy.Config{Store: store, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	_, err = reg.EnsureDefault(context.Background())
	require.NoError(t, err)
	superadmin, _, err := reg.CreateSuperadminKey(context.Background(), writeside.ActorInit, "superadmin")
	require.NoError(t, err)
	def, _ := reg.Tenant(tenants.DefaultID)
	ledger := def.Ledger
	backupDir := t.TempDir()
	api, err := httpapi.New(httpapi.Config{
		Tenants: reg,
		Verify: func(ctx context.Context, chain string) (verify.Report, error) {
			return verify.Store(ctx, store, chain)
		},
		Logger:    logger,
		Backup:    func(_ context.Context, dir string) error { return store.Checkpoint(dir) },
		BackupDir: backupDir,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	_, admin, _, err := ledger.CreateKey(context.Background(), writeside.ActorInit,
		keys.CreateCommand{Name: "bootstrap", Scope: "admin"})
	require.NoError(t, err)
	return &server{url: srv.URL, admin: admin, superadmin: superadmin, store: store, backupDir: backupDir}
}

func (s *server) client(t *testing.T, key string) *client.Client {
	t.Helper()
	opts := []client.Option{client.WithUserAgent("custos-client-test")}
	if key != "" {
		opts = append(opts, client.WithAPIKey(key))
	}
	c, err := client.New(s.url, opts...)
	require.NoError(t, err)
	return c
}

// requireAPIError requires err to be an *APIError with status and the
// matching sentinel, and returns its detail.
func requireAPIError(t *testing.T, err error, sentinel error, status int) string {
	t.Helper()
	require.Error(t, err)
	var apiErr *client.APIError
	require.True(t, errors.As(err, &apiErr), "want *APIError, got %T: %v", err, err)
	assert.Equal(t, status, apiErr.Status)
	assert.ErrorIs(t, err, sentinel)
	for _, other := range []error{client.ErrUnauthorized, client.ErrForbidden, client.ErrNotFound,
		client.ErrConflict, client.ErrMalformed, client.ErrInvalid, client.ErrUnavailable} {
		if other != sentinel {
			assert.NotErrorIs(t, err, other)
		}
	}
	return apiErr.Detail
}

func ptr[T any](v T) *T { return &v }

func TestProbes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c := s.client(t, "")
	require.NoError(t, c.Health(context.Background()))
	require.NoError(t, c.Ready(context.Background()))
}

func TestKeys(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	c := s.client(t, s.admin)

	created, err := c.CreateKey(ctx, wire.CreateKeyRequest{Name: "reporting", Scope: "read", ExpiresDays: ptr(30)})
	require.NoError(t, err)
	assert.Regexp(t, keyPattern, created.Key)
	assert.Equal(t, "reporting", created.Name)
	assert.Equal(t, "read", created.Scope)
	assert.True(t, created.IsActive)
	assert.WithinDuration(t, created.CreatedAt.AddDate(0, 0, 30), created.ExpiresAt, 0)

	list, err := c.ListKeys(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, created.KeyID, list[0].KeyID, "newest first")

	got, err := c.GetKey(ctx, created.KeyID)
	require.NoError(t, err)
	assert.Equal(t, "reporting", got.Name)
	assert.Nil(t, got.RevokedAt)

	// The new key works, with its scope.
	reader := s.client(t, created.Key)
	_, err = reader.ListKeys(ctx)
	require.NoError(t, err)
	detail := requireAPIError(t, func() error {
		_, err := reader.CreateKey(ctx, wire.CreateKeyRequest{Name: "x", Scope: "read"})
		return err
	}(), client.ErrForbidden, http.StatusForbidden)
	assert.Equal(t, "Insufficient scope: POST /v1/keys requires admin.", detail)

	rotated, err := c.RotateKey(ctx, created.KeyID, wire.RotateKeyRequest{GraceSeconds: ptr(0)})
	require.NoError(t, err)
	assert.Equal(t, created.KeyID, rotated.RotatedFrom)
	assert.Regexp(t, keyPattern, rotated.Key)
	old, err := c.GetKey(ctx, created.KeyID)
	require.NoError(t, err)
	require.NotNil(t, old.RotatedTo)
	assert.Equal(t, rotated.KeyID, *old.RotatedTo)

	revoked, err := c.RevokeKey(ctx, rotated.KeyID)
	require.NoError(t, err)
	assert.False(t, revoked.IsActive)
	assert.NotNil(t, revoked.RevokedAt)

	_, err = c.RevokeKey(ctx, rotated.KeyID)
	assert.Equal(t, "Key is already revoked.", requireAPIError(t, err, client.ErrConflict, http.StatusConflict))
	_, err = c.GetKey(ctx, "key_nope")
	assert.Equal(t, "Key not found.", requireAPIError(t, err, client.ErrNotFound, http.StatusNotFound))
	_, err = c.CreateKey(ctx, wire.CreateKeyRequest{Name: "bad", Scope: "root"})
	assert.Contains(t, requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity), "scope")
	_, err = c.CreateKey(ctx, wire.CreateKeyRequest{Name: "dated", Scope: "read", ExpiresAt: ptr(created.CreatedAt.AddDate(1, 0, 0).Format(time.RFC3339Nano))})
	require.NoError(t, err, "expires_at is sent as RFC 3339")
}

func TestAuthenticationErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()

	_, err := s.client(t, "").ListKeys(ctx)
	assert.Equal(t, "Missing API key.", requireAPIError(t, err, client.ErrUnauthorized, http.StatusUnauthorized))

	_, err = s.client(t, "cst_garbage").ListKeys(ctx)
	assert.Equal(t, "Invalid or revoked API key.", requireAPIError(t, err, client.ErrForbidden, http.StatusForbidden))
	assert.EqualError(t, err, "client: 403 Forbidden: Invalid or revoked API key.")
}

const lending = `{"name": "lending-policy", "agent_role": "loan_officer",
  "allowed_sources": ["crm", "credit_bureau"], "denied_sources": ["hr_records"],
  "max_sensitivity": "high"}`

func lendingPolicy(t *testing.T) wire.Policy {
	t.Helper()
	ps, err := policyFromJSON(lending)
	require.NoError(t, err)
	return ps
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	c := s.client(t, s.admin)

	created, err := c.CreatePolicy(ctx, lendingPolicy(t))
	require.NoError(t, err)
	assert.NotEmpty(t, created.PolicyID)
	assert.Equal(t, 1, created.Version)
	assert.Equal(t, []string{"crm", "credit_bureau"}, created.AllowedSources)

	list, err := c.ListPolicies(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, created.PolicyID, list[0].PolicyID)

	got, err := c.GetPolicy(ctx, created.PolicyID)
	require.NoError(t, err)
	assert.Equal(t, "lending-policy", got.Name)

	change := got
	change.AllowedSources = []string{"crm"}
	updated, err := c.UpdatePolicy(ctx, created.PolicyID, change)
	require.NoError(t, err, "a policy as read, with its server-managed fields, may be sent back")
	assert.Equal(t, 2, updated.Version)
	assert.Equal(t, []string{"crm"}, updated.AllowedSources)

	_, err = c.CreatePolicy(ctx, lendingPolicy(t))
	assert.Contains(t, requireAPIError(t, err, client.ErrConflict, http.StatusConflict), "Conflict:")
	_, err = c.CreatePolicy(ctx, wire.Policy{Name: "no-role"})
	assert.Contains(t, requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity), "agent_role")

	deleted, err := c.DeletePolicy(ctx, created.PolicyID)
	require.NoError(t, err)
	assert.Equal(t, 2, deleted.Version)
	_, err = c.GetPolicy(ctx, created.PolicyID)
	assert.Equal(t, "Policy not found.", requireAPIError(t, err, client.ErrNotFound, http.StatusNotFound))
	_, err = c.DeletePolicy(ctx, created.PolicyID)
	requireAPIError(t, err, client.ErrNotFound, http.StatusNotFound)
	list, err = c.ListPolicies(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestAgents(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	c := s.client(t, s.admin)

	a, err := c.RegisterAgent(ctx, wire.RegisterAgentRequest{
		AgentID: "loan-agent", AgentRole: "loan_officer", Owner: "ana", Framework: "langgraph",
		PermittedRoles: []string{"loan_reviewer"},
	})
	require.NoError(t, err)
	assert.Equal(t, client.AgentDraft, a.Status)
	assert.Nil(t, a.DisplayName, "null is nil")
	_, err = c.RegisterAgent(ctx, wire.RegisterAgentRequest{AgentRole: "kyc", Framework: "crewai"})
	require.NoError(t, err)

	all, err := c.ListAgents(ctx, client.AgentFilter{})
	require.NoError(t, err)
	assert.Len(t, all, 2)
	some, err := c.ListAgents(ctx, client.AgentFilter{Framework: "langgraph", Owner: "ana", Status: client.AgentDraft})
	require.NoError(t, err)
	require.Len(t, some, 1)
	assert.Equal(t, "loan-agent", some[0].AgentID)

	got, err := c.GetAgent(ctx, "loan-agent")
	require.NoError(t, err)
	assert.Equal(t, []string{"loan_reviewer"}, got.PermittedRoles)

	updated, err := c.UpdateAgent(ctx, "loan-agent", wire.UpdateAgentRequest{DisplayName: ptr("Loan agent")})
	require.NoError(t, err)
	assert.Equal(t, ptr("Loan agent"), updated.DisplayName)
	assert.Equal(t, ptr("ana"), updated.Owner, "absent fields keep their values")

	approved, err := c.SetAgentStatus(ctx, "loan-agent", client.AgentApproved)
	require.NoError(t, err)
	assert.Equal(t, client.AgentApproved, approved.Status)
	_, err = c.SetAgentStatus(ctx, "loan-agent", client.AgentDraft)
	requireAPIError(t, err, client.ErrConflict, http.StatusConflict)
	_, err = c.SetAgentStatus(ctx, "loan-agent", "asleep")
	requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity)

	retired, err := c.RetireAgent(ctx, "loan-agent")
	require.NoError(t, err)
	assert.Equal(t, client.AgentRetired, retired.Status)
	_, err = c.RetireAgent(ctx, "loan-agent")
	requireAPIError(t, err, client.ErrConflict, http.StatusConflict)
	_, err = c.GetAgent(ctx, "ghost")
	assert.Equal(t, "Agent not found.", requireAPIError(t, err, client.ErrNotFound, http.StatusNotFound))
}

func TestEvaluateSessionTrailAndVerify(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	admin := s.client(t, s.admin)
	_, err := admin.CreatePolicy(ctx, lendingPolicy(t))
	require.NoError(t, err)
	_, err = admin.RegisterAgent(ctx, wire.RegisterAgentRequest{AgentID: "loan-agent", AgentRole: "loan_officer"})
	require.NoError(t, err)
	_, err = admin.SetAgentStatus(ctx, "loan-agent", client.AgentApproved)
	require.NoError(t, err)
	k, err := admin.CreateKey(ctx, wire.CreateKeyRequest{Name: "loan-agent-prod", Scope: "evaluate", AgentID: "loan-agent"})
	require.NoError(t, err)
	agent := s.client(t, k.Key)

	req := wire.EvaluateRequest{AgentRole: "loan_officer", AgentID: "loan-agent", UserID: "u-1",
		SourceID: "crm", SensitivityLevel: "low", SessionID: "sess-1"}
	allowed, err := agent.Evaluate(ctx, req)
	require.NoError(t, err)
	assert.True(t, allowed.Allowed(), "%+v", allowed)
	assert.Equal(t, "lending-policy", allowed.PolicyName)
	require.NotNil(t, allowed.PolicyVersion)
	assert.NotEmpty(t, allowed.EventID)

	req.SourceID = "hr_records"
	denied, err := agent.Evaluate(ctx, req)
	require.NoError(t, err, "a DENY is an answer, not an error")
	assert.Equal(t, client.Deny, denied.Decision)
	assert.Greater(t, denied.Seq, allowed.Seq)

	_, err = agent.Evaluate(ctx, wire.EvaluateRequest{AgentRole: "loan_officer"})
	requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity)
	_, err = agent.ListKeys(ctx)
	requireAPIError(t, err, client.ErrForbidden, http.StatusForbidden)

	trail, err := admin.SessionTrail(ctx, "sess-1")
	require.NoError(t, err)
	assert.Equal(t, 2, trail.TotalEvents)
	assert.Equal(t, 1, trail.Allowed)
	assert.Equal(t, 1, trail.Denied)
	require.Len(t, trail.Events, 2)
	assert.Equal(t, "hr_records", trail.Events[1].SourceID)
	assert.Equal(t, k.KeyID, trail.Events[0].KeyID)
	_, err = admin.SessionTrail(ctx, "sess-none")
	assert.Equal(t, "Session not found.", requireAPIError(t, err, client.ErrNotFound, http.StatusNotFound))

	report, err := admin.VerifyChain(ctx)
	require.NoError(t, err)
	assert.True(t, report.Valid)
	assert.Nil(t, report.BrokenAt)
	assert.Nil(t, report.Problem)
	assert.Equal(t, report.Total, report.HeadSeq)
	assert.GreaterOrEqual(t, report.Total, denied.Seq)
}

func TestBackup(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	c := s.client(t, s.superadmin)
	res, err := c.Backup(ctx, "nightly")
	require.NoError(t, err)
	out := filepath.Join(s.backupDir, "nightly")
	assert.Equal(t, wire.BackupResult{Name: "nightly", Out: out, DurationMS: res.DurationMS}, res)
	ok, err := eventstore.Exists(nil, out)
	require.NoError(t, err)
	assert.True(t, ok)

	_, err = c.Backup(ctx, "nightly")
	assert.Contains(t, requireAPIError(t, err, client.ErrConflict, http.StatusConflict), "already exists")
	for _, bad := range []string{"relative/backup", "/abs/path", "..", ""} {
		_, err = c.Backup(ctx, bad)
		requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c := s.client(t, s.admin)
	require.NoError(t, s.store.Close())
	_, err := c.CreateKey(context.Background(), wire.CreateKeyRequest{Name: "late", Scope: "read"})
	assert.Equal(t, "audit log unavailable", requireAPIError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable))
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c := s.client(t, s.admin)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			_, err := c.CreateKey(context.Background(), wire.CreateKeyRequest{Name: fmt.Sprintf("k-%d", i), Scope: "read"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	list, err := c.ListKeys(context.Background())
	require.NoError(t, err)
	assert.Len(t, list, 17)
}

func TestErrorsWithoutDetail(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			http.Error(w, "upstream down", http.StatusBadGateway)
		case "/readyz":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("<html>maintenance</html>"))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL + "/")
	require.NoError(t, err)
	err = c.Health(context.Background())
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, client.APIError{Status: 502, Detail: "upstream down"}, *apiErr)
	err = c.Ready(context.Background())
	assert.Equal(t, "Service Unavailable", requireAPIError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable))
}

func TestTransportErrorsAreNotAPIErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := client.New(url)
	require.NoError(t, err)
	err = c.Health(context.Background())
	require.Error(t, err)
	var apiErr *client.APIError
	assert.False(t, errors.As(err, &apiErr))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, c.Health(ctx), context.Canceled)
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://h", "http://", "http://h/?q=1", "://x"} {
		_, err := client.New(u)
		assert.Error(t, err, "%q", u)
	}
	c, err := client.New("https://custos.example.com/base/")
	require.NoError(t, err)
	assert.Equal(t, "https://custos.example.com/base", c.BaseURL())
}

func TestUserAgentAndHTTPClient(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New(srv.URL, client.WithHTTPClient(hc), client.WithUserAgent("agent/1.0"))
	require.NoError(t, err)
	require.NoError(t, c.Health(context.Background()))
	d, err := client.New(srv.URL)
	require.NoError(t, err)
	require.NoError(t, d.Health(context.Background()))
	assert.True(t, used)
	assert.Equal(t, []string{"agent/1.0", client.DefaultUserAgent}, agents)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// policyFromJSON decodes a policy as the server would.
func policyFromJSON(s string) (wire.Policy, error) {
	var p policy.Policy
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}
