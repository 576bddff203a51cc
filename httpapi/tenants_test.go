package httpapi_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/verify"
)

// seeded is a tenant created through POST /v1/tenants and seeded through
// its own admin key with the same names as every other seeded tenant.
type seeded struct {
	id                      string
	admin, read, evaluate   string // active keys
	expired, revoked        string // keys that no longer authenticate
	mu                      sync.Mutex
	ids                     []string // generated ids only this tenant holds
	eventID, policyID, agID string
}

func (sd *seeded) remember(ids ...string) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	sd.ids = append(sd.ids, ids...)
}

func (sd *seeded) secrets() []string {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	return append([]string{sd.admin, sd.read, sd.evaluate, sd.expired, sd.revoked}, sd.ids...)
}

// seedTenant creates tenant id with identical policy names, roles, agent
// ids, session ids and alert rule ids as any other seeded tenant.
func seedTenant(t *testing.T, s *stack, id string) *seeded {
	t.Helper()
	r := s.postJSON(t, "/v1/tenants", s.superadmin, fmt.Sprintf(`{"tenant_id":%q,"name":"Same Name"}`, id))
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	ak := r.object(t)["admin_key"].(map[string]any)
	sd := &seeded{id: id, admin: ak["key"].(string)}
	sd.remember(ak["key_id"].(string))
	mk := func(name, scope string, days int) (string, string) {
		body := fmt.Sprintf(`{"name":%q,"scope":%q}`, name, scope)
		if days > 0 {
			body = fmt.Sprintf(`{"name":%q,"scope":%q,"expires_days":%d}`, name, scope, days)
		}
		r := s.postJSON(t, "/v1/keys", sd.admin, body)
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		m := r.object(t)
		sd.remember(m["key_id"].(string))
		return m["key_id"].(string), m["key"].(string)
	}
	_, sd.read = mk("reader", "read", 0)
	_, sd.evaluate = mk("evaluator", "evaluate", 0)
	_, sd.expired = mk("short", "read", 1)
	revokedID, revoked := mk("gone", "read", 0)
	sd.revoked = revoked
	require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+revokedID, sd.admin).status)

	r = s.postJSON(t, "/v1/policies", sd.admin, `{"name":"loans","agent_role":"loan_officer","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	sd.policyID = r.object(t)["policy_id"].(string)
	sd.remember(sd.policyID)
	r = s.postJSON(t, "/v1/agents", sd.admin, `{"agent_id":"loan-agent","agent_role":"loan_officer"}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	r = s.do(t, request{method: http.MethodPatch, path: "/v1/agents/loan-agent/status", key: sd.admin, body: `{"status":"approved"}`})
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	r = s.postJSON(t, "/v1/alerts/rules", sd.admin, `{"rule_id":"same-rule","kind":"verify_failed"}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	r = s.postJSON(t, "/v1/context/evaluate", sd.evaluate, evaluateBody("same-session"))
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	require.Equal(t, "ALLOW", r.object(t)["decision"], "body %s", r.body)
	sd.eventID = r.object(t)["event_id"].(string)
	return sd
}

// rememberChain adds the id and hashes of every record of sd's chain.
func rememberChain(t *testing.T, s *stack, sd *seeded) {
	t.Helper()
	require.NoError(t, s.store.Records(context.Background(), sd.id, 1, 0, func(r eventstore.Record) error {
		sd.remember(r.ID, hex.EncodeToString(r.Hash[:]))
		return nil
	}))
}

// fill replaces the path parameters of path with objects of sd, made
// fresh for each call by sd's admin key where the call may change them.
func fill(t *testing.T, s *stack, sd *seeded, path string) string {
	t.Helper()
	n := unique.Add(1)
	switch {
	case strings.Contains(path, ":key_id"):
		r := s.postJSON(t, "/v1/keys", sd.admin, `{"name":"target","scope":"evaluate"}`)
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		id := r.object(t)["key_id"].(string)
		sd.remember(id, r.object(t)["key"].(string))
		return strings.ReplaceAll(path, ":key_id", id)
	case strings.Contains(path, ":policy_id"):
		r := s.postJSON(t, "/v1/policies", sd.admin, uniquePolicy())
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		id := r.object(t)["policy_id"].(string)
		sd.remember(id)
		return strings.ReplaceAll(path, ":policy_id", id)
	case strings.Contains(path, ":agent_id"):
		id := fmt.Sprintf("only-%s-agent-%d", sd.id, n)
		r := s.postJSON(t, "/v1/agents", sd.admin, fmt.Sprintf(`{"agent_id":%q,"agent_role":"matrix"}`, id))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		sd.remember(id)
		return strings.ReplaceAll(path, ":agent_id", id)
	case strings.Contains(path, ":rule_id"):
		id := fmt.Sprintf("only-%s-rule-%d", sd.id, n)
		r := s.postJSON(t, "/v1/alerts/rules", sd.admin, fmt.Sprintf(`{"rule_id":%q,"kind":"verify_failed"}`, id))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		sd.remember(id)
		return strings.ReplaceAll(path, ":rule_id", id)
	case strings.Contains(path, ":event_id"):
		return strings.ReplaceAll(path, ":event_id", sd.eventID)
	case strings.Contains(path, ":session_id"):
		return strings.ReplaceAll(path, ":session_id", "same-session") // every tenant has one
	case strings.Contains(path, ":tenant_id"):
		id := fmt.Sprintf("matrix-%d", n)
		r := s.postJSON(t, "/v1/tenants", s.superadmin, fmt.Sprintf(`{"tenant_id":%q}`, id))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		if strings.HasSuffix(path, "/resume") {
			r = s.postJSON(t, "/v1/tenants/"+id+"/suspend", s.superadmin, `{}`)
			require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		}
		return strings.ReplaceAll(path, ":tenant_id", id)
	case path == "/v1/audit/proof/inclusion":
		return path + "?seq=1"
	case path == "/v1/audit/proof/consistency":
		return path + "?from=1"
	}
	return path
}

// namesOwnObject reports whether a route's path parameter names an object
// by an id that only its tenant holds (so another tenant's key must get
// 404); sessions are named alike in every seeded tenant.
func namesOwnObject(path string) bool {
	for _, p := range []string{":key_id", ":policy_id", ":agent_id", ":rule_id", ":event_id"} {
		if strings.Contains(path, p) {
			return true
		}
	}
	return false
}

// TestTenantIsolationMatrix seeds tenants acme and acme2 identically and
// calls every route with every key: acme's keys of each scope, acme2's,
// a superadmin's, and expired and revoked ones, on acme's objects. Each
// status is the route table's; a key of acme2 naming acme's object gets
// 404; and no answer to one tenant's key holds an id of the other.
func TestTenantIsolationMatrix(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b := seedTenant(t, s, "acme"), seedTenant(t, s, "acme2")
	s.clock.Advance(48 * time.Hour) // the one-day keys expire
	rememberChain(t, s, a)
	rememberChain(t, s, b)

	type caller struct {
		name   string
		key    string
		scope  keys.Scope
		tenant *seeded // nil for the superadmin
		dead   bool    // expired or revoked
	}
	callers := []caller{
		{"acme-admin", a.admin, keys.ScopeAdmin, a, false},
		{"acme-read", a.read, keys.ScopeRead, a, false},
		{"acme-evaluate", a.evaluate, keys.ScopeEvaluate, a, false},
		{"acme-expired", a.expired, keys.ScopeRead, a, true},
		{"acme-revoked", a.revoked, keys.ScopeRead, a, true},
		{"acme2-admin", b.admin, keys.ScopeAdmin, b, false},
		{"acme2-read", b.read, keys.ScopeRead, b, false},
		{"acme2-evaluate", b.evaluate, keys.ScopeEvaluate, b, false},
		{"superadmin", s.superadmin, keys.ScopeSuperadmin, nil, false},
	}
	other := map[*seeded]*seeded{a: b, b: a}
	for _, rt := range routeSpecs() {
		if rt.scope == httpapi.NoAuth {
			continue
		}
		for _, c := range callers {
			t.Run(fmt.Sprintf("%s_%s/%s", rt.method, rt.path, c.name), func(t *testing.T) {
				path := fill(t, s, a, rt.path) // always acme's objects
				body := rt.body
				if rt.newBody != nil {
					body = rt.newBody()
				}
				r := s.do(t, request{method: rt.method, path: path, key: c.key, body: body})
				switch {
				case c.dead:
					require.Equal(t, http.StatusForbidden, r.status, "body %s", r.body)
					assert.Equal(t, "Invalid or revoked API key.", r.detail(t))
				case !c.scope.Allows(rt.scope):
					require.Equal(t, http.StatusForbidden, r.status, "body %s", r.body)
					assert.Equal(t, fmt.Sprintf("Insufficient scope: %s %s requires %s.", rt.method, rt.path, rt.scope), r.detail(t))
				case c.tenant == b && namesOwnObject(rt.path):
					require.Equal(t, http.StatusNotFound, r.status, "acme2's key naming acme's object: body %s", r.body)
				default:
					require.Equal(t, rt.ok, r.status, "body %s", r.body)
				}
				if c.tenant != nil {
					for _, secret := range other[c.tenant].secrets() {
						require.NotContains(t, string(r.body), secret, "an answer to %s holds an id of %s", c.name, other[c.tenant].id)
					}
				}
			})
		}
	}

	// Each tenant's chain verifies alone and holds nothing of the other's.
	for _, sd := range []*seeded{a, b} {
		report, err := verify.Store(context.Background(), s.store, sd.id)
		require.NoError(t, err)
		require.True(t, report.Valid, "%+v", report.Detail)
		r := s.get(t, "/v1/audit/export", sd.admin)
		require.Equal(t, http.StatusOK, r.status)
		for _, secret := range other[sd].secrets() {
			require.NotContains(t, string(r.body), secret)
		}
		require.Contains(t, string(r.body), `"chain":"`+sd.id+`"`)
	}
}
