package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/projections/writeside"
)

var keyPattern = regexp.MustCompile(keys.Pattern)

// routeSpec is the product's statement of one route: who may call it and
// what a successful call looks like. The matrix derives every expectation
// from it.
type routeSpec struct {
	method, path string     // path as registered, with :key_id or :policy_id
	scope        keys.Scope // least scope, or httpapi.NoAuth
	ok           int        // status of a successful call
	body         string     // request body of a successful call
	// newBody, if set, makes a fresh body for each call (unique names).
	newBody func() string
	// check asserts a successful answer; target is the path parameter used.
	check func(t *testing.T, target string, r response)
}

// unique numbers names so that every call of a route may succeed.
var unique atomic.Int64

// evaluateBody asks for a decision in session id; the agent is registered
// (draft), so the answer is a DENY, which is still a 200.
func evaluateBody(session string) string {
	return fmt.Sprintf(`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":%q}`, session)
}

func uniquePolicy() string {
	n := unique.Add(1)
	return fmt.Sprintf(`{"name":"matrix-%d","agent_role":"matrix_role_%d","allowed_sources":["crm"]}`, n, n)
}

// target creates what a route's path parameter names and returns the path
// with it filled in.
func target(t *testing.T, s *stack, path string) (string, string) {
	t.Helper()
	switch {
	case strings.Contains(path, ":key_id"):
		id, _ := s.createKey(t, "target", "evaluate", 0)
		return strings.ReplaceAll(path, ":key_id", id), id
	case strings.Contains(path, ":agent_id"):
		r := s.postJSON(t, "/v1/agents", s.admin, fmt.Sprintf(`{"agent_id":"matrix-agent-%d","agent_role":"matrix"}`, unique.Add(1)))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		id := r.object(t)["agent_id"].(string)
		return strings.ReplaceAll(path, ":agent_id", id), id
	case strings.Contains(path, ":session_id"):
		n := unique.Add(1)
		agent, id := fmt.Sprintf("session-agent-%d", n), fmt.Sprintf("matrix-session-%d", n)
		r := s.postJSON(t, "/v1/agents", s.admin, fmt.Sprintf(`{"agent_id":%q,"agent_role":"matrix"}`, agent))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		r = s.do(t, request{method: http.MethodPatch, path: "/v1/agents/" + agent + "/status", key: s.admin, body: `{"status":"approved"}`})
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		r = s.postJSON(t, "/v1/context/evaluate", s.admin, fmt.Sprintf(
			`{"agent_role":"matrix","agent_id":%q,"user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":%q}`, agent, id))
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		return strings.ReplaceAll(path, ":session_id", id), id
	case strings.Contains(path, ":rule_id"):
		id := fmt.Sprintf("matrix-rule-%d", unique.Add(1))
		_, err := s.ledger.SetAlertRule(context.Background(), writeside.ActorInit, alerts.Rule{RuleID: id, Kind: alerts.KindVerifyFailed})
		require.NoError(t, err)
		return strings.ReplaceAll(path, ":rule_id", id), id
	case strings.Contains(path, ":event_id"):
		rec, err := s.store.Get(context.Background(), eventstore.DefaultChain, 1)
		require.NoError(t, err)
		return strings.ReplaceAll(path, ":event_id", rec.ID), rec.ID
	case path == "/v1/audit/proof/inclusion":
		return path + "?seq=1", ""
	case path == "/v1/audit/proof/consistency":
		return path + "?from=1", ""
	case strings.Contains(path, ":tenant_id"):
		id := fmt.Sprintf("matrix-%d", unique.Add(1))
		r := s.postJSON(t, "/v1/tenants", s.superadmin, fmt.Sprintf(`{"tenant_id":%q}`, id))
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		if strings.HasSuffix(path, "/resume") {
			r = s.postJSON(t, "/v1/tenants/"+id+"/suspend", s.superadmin, `{"reason":"matrix"}`)
			require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		}
		return strings.ReplaceAll(path, ":tenant_id", id), id
	case strings.Contains(path, ":policy_id"):
		r := s.postJSON(t, "/v1/policies", s.admin, uniquePolicy())
		require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
		id := r.object(t)["policy_id"].(string)
		return strings.ReplaceAll(path, ":policy_id", id), id
	}
	return path, ""
}

func routeSpecs() []routeSpec {
	return []routeSpec{
		{method: "GET", path: "/healthz", scope: httpapi.NoAuth, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.JSONEq(t, `{"status":"ok"}`, string(r.body))
		}},
		{method: "GET", path: "/readyz", scope: httpapi.NoAuth, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.JSONEq(t, `{"status":"ready"}`, string(r.body))
		}},
		{method: "GET", path: "/metrics", scope: httpapi.NoAuth, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), "custos_decisions_total")
		}},
		{method: "GET", path: "/openapi.json", scope: httpapi.NoAuth, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), `"openapi":"3.0.3"`)
		}},
		{method: "POST", path: "/v1/keys", scope: keys.ScopeAdmin, ok: 201, body: `{"name":"matrix","scope":"evaluate","expires_days":7}`,
			check: func(t *testing.T, _ string, r response) {
				m := r.object(t)
				assert.Regexp(t, keyPattern, m["key"])
				assert.Equal(t, "evaluate", m["scope"])
				assert.Equal(t, true, m["is_active"])
			}},
		{method: "GET", path: "/v1/keys", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.True(t, strings.HasPrefix(string(r.body), "["), "bare array: %s", r.body)
			assert.NotContains(t, string(r.body), `"key"`)
		}},
		{method: "GET", path: "/v1/keys/:key_id", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, target, r.object(t)["key_id"])
		}},
		{method: "POST", path: "/v1/keys/:key_id/rotate", scope: keys.ScopeAdmin, ok: 201, check: func(t *testing.T, target string, r response) {
			m := r.object(t)
			assert.Equal(t, target, m["rotated_from"])
			assert.Regexp(t, keyPattern, m["key"])
		}},
		{method: "DELETE", path: "/v1/keys/:key_id", scope: keys.ScopeAdmin, ok: 200, check: func(t *testing.T, target string, r response) {
			m := r.object(t)
			assert.Equal(t, target, m["key_id"])
			assert.Equal(t, false, m["is_active"])
			assert.NotNil(t, m["revoked_at"])
		}},
		{method: "GET", path: "/v1/audit/verify", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Equal(t, true, r.object(t)["valid"])
		}},
		{method: "GET", path: "/v1/policies", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.True(t, strings.HasPrefix(string(r.body), "["), "bare array: %s", r.body)
		}},
		{method: "GET", path: "/v1/policies/:policy_id", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, target, r.object(t)["policy_id"])
		}},
		{method: "POST", path: "/v1/policies", scope: keys.ScopeAdmin, ok: 201, newBody: uniquePolicy, check: func(t *testing.T, _ string, r response) {
			assert.EqualValues(t, 1, r.object(t)["version"])
		}},
		{method: "PUT", path: "/v1/policies/:policy_id", scope: keys.ScopeAdmin, ok: 200, newBody: uniquePolicy, check: func(t *testing.T, target string, r response) {
			m := r.object(t)
			assert.Equal(t, target, m["policy_id"])
			assert.EqualValues(t, 2, m["version"])
		}},
		{method: "DELETE", path: "/v1/policies/:policy_id", scope: keys.ScopeAdmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, target, r.object(t)["policy_id"])
		}},
		{method: "POST", path: "/v1/context/evaluate", scope: keys.ScopeEvaluate, ok: 200,
			newBody: func() string { return evaluateBody(fmt.Sprintf("matrix-eval-%d", unique.Add(1))) },
			check: func(t *testing.T, _ string, r response) {
				m := r.object(t)
				assert.Equal(t, "DENY", m["decision"])
				assert.Equal(t, "Agent 'loan-agent' is not approved (status: 'draft')", m["reason"])
				assert.NotEmpty(t, m["event_id"])
			}},
		{method: "POST", path: "/v1/agents", scope: keys.ScopeAdmin, ok: 201,
			newBody: func() string {
				return fmt.Sprintf(`{"agent_role":"matrix","owner_team":null,"framework":"langgraph-%d"}`, unique.Add(1))
			},
			check: func(t *testing.T, _ string, r response) {
				m := r.object(t)
				assert.Equal(t, "draft", m["status"])
				assert.Regexp(t, `^agent_[0-9A-Z]{26}$`, m["agent_id"])
			}},
		{method: "GET", path: "/v1/agents", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.True(t, strings.HasPrefix(string(r.body), "["), "bare array: %s", r.body)
		}},
		{method: "GET", path: "/v1/agents/:agent_id", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, target, r.object(t)["agent_id"])
		}},
		{method: "PUT", path: "/v1/agents/:agent_id", scope: keys.ScopeAdmin, ok: 200, body: `{"display_name":"Matrix"}`,
			check: func(t *testing.T, target string, r response) {
				m := r.object(t)
				assert.Equal(t, target, m["agent_id"])
				assert.Equal(t, "Matrix", m["display_name"])
			}},
		{method: "PATCH", path: "/v1/agents/:agent_id/status", scope: keys.ScopeAdmin, ok: 200, body: `{"status":"approved"}`,
			check: func(t *testing.T, target string, r response) {
				assert.Equal(t, "approved", r.object(t)["status"])
			}},
		{method: "DELETE", path: "/v1/agents/:agent_id", scope: keys.ScopeAdmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, "retired", r.object(t)["status"])
		}},
		{method: "GET", path: "/v1/audit/events", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.NotEmpty(t, r.object(t)["events"])
		}},
		{method: "GET", path: "/v1/audit/export", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), `"payload_base64"`)
		}},
		{method: "GET", path: "/v1/keys/history", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), `"fact":"created"`)
		}},
		{method: "GET", path: "/v1/audit/sessions/:session_id", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, target string, r response) {
			m := r.object(t)
			assert.Equal(t, target, m["session_id"])
			assert.EqualValues(t, 1, m["total_events"])
		}},
		{method: "POST", path: "/v1/admin/backup", scope: keys.ScopeSuperadmin, ok: 201, newBody: newBackupBody, check: checkBackup},
		{method: "GET", path: "/v1/alerts", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, r.object(t), "alerts")
		}},
		{method: "GET", path: "/v1/alerts/rules", scope: keys.ScopeAdmin, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, r.object(t), "rules")
		}},
		{method: "POST", path: "/v1/alerts/rules", scope: keys.ScopeAdmin, ok: 201,
			newBody: func() string {
				return fmt.Sprintf(`{"rule_id":"matrix-%d","kind":"verify_failed"}`, unique.Add(1))
			},
			check: func(t *testing.T, _ string, r response) {
				assert.Equal(t, "verify_failed", r.object(t)["kind"])
			}},
		{method: "DELETE", path: "/v1/alerts/rules/:rule_id", scope: keys.ScopeAdmin, ok: 204, check: func(t *testing.T, _ string, r response) {
			assert.Empty(t, r.body)
		}},
		{method: "GET", path: "/v1/alerts/dead-letters", scope: keys.ScopeAdmin, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, r.object(t), "dead_letters")
		}},
		{method: "GET", path: "/v1/audit/checkpoint", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), "custos.test/api/default\n")
		}},
		{method: "GET", path: "/v1/audit/vkey", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), "custos.test/api+")
		}},
		{method: "GET", path: "/v1/audit/proof/inclusion", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.EqualValues(t, 0, r.object(t)["index"])
		}},
		{method: "GET", path: "/v1/audit/proof/consistency", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.EqualValues(t, 1, r.object(t)["from"])
		}},
		{method: "GET", path: "/v1/audit/events/:event_id/receipt", scope: keys.ScopeRead, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.True(t, strings.HasPrefix(string(r.body), "c2sp.org/tlog-proof@v1\nextra "), "%s", r.body)
			assert.Contains(t, string(r.body), "\nindex 0\n")
		}},
		{method: "POST", path: "/v1/tenants", scope: keys.ScopeSuperadmin, ok: 201,
			newBody: func() string { return fmt.Sprintf(`{"tenant_id":"matrix-new-%d"}`, unique.Add(1)) },
			check: func(t *testing.T, _ string, r response) {
				m := r.object(t)
				assert.Equal(t, "active", m["status"])
				assert.Regexp(t, keyPattern, m["admin_key"].(map[string]any)["key"])
			}},
		{method: "GET", path: "/v1/tenants", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), `"tenant_id":"default"`)
		}},
		// AutoPIL's path for the same two routes.
		{method: "POST", path: "/v1/admin/tenants", scope: keys.ScopeSuperadmin, ok: 201,
			newBody: func() string { return fmt.Sprintf(`{"tenant_id":"matrix-autopil-%d"}`, unique.Add(1)) },
			check: func(t *testing.T, _ string, r response) {
				m := r.object(t)
				assert.Equal(t, "active", m["status"])
				assert.Regexp(t, keyPattern, m["admin_key"].(map[string]any)["key"])
			}},
		{method: "GET", path: "/v1/admin/tenants", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, string(r.body), `"tenant_id":"default"`)
		}},
		{method: "GET", path: "/v1/tenants/:tenant_id", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, target, r.object(t)["tenant_id"])
		}},
		{method: "POST", path: "/v1/tenants/:tenant_id/suspend", scope: keys.ScopeSuperadmin, ok: 200, body: `{"reason":"matrix"}`,
			check: func(t *testing.T, target string, r response) {
				assert.Equal(t, "suspended", r.object(t)["status"])
			}},
		{method: "POST", path: "/v1/tenants/:tenant_id/resume", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Equal(t, "active", r.object(t)["status"])
		}},
		{method: "POST", path: "/v1/tenants/:tenant_id/admin-keys", scope: keys.ScopeSuperadmin, ok: 201, body: `{"name":"second"}`,
			check: func(t *testing.T, target string, r response) {
				assert.Equal(t, "admin", r.object(t)["scope"])
			}},
		{method: "GET", path: "/v1/tenants/:tenant_id/audit/verify", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			m := r.object(t)
			assert.Equal(t, true, m["valid"])
			assert.Equal(t, target, m["chain"])
		}},
		{method: "GET", path: "/v1/tenants/:tenant_id/audit/export", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Contains(t, string(r.body), `"chain":"`+target+`"`)
			assert.NotContains(t, string(r.body), `"chain":"default"`)
		}},
		{method: "GET", path: "/v1/tenants/:tenant_id/audit/checkpoint", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Contains(t, string(r.body), "custos.test/api/"+target+"\n")
		}},
		{method: "GET", path: "/v1/tenants/:tenant_id/audit/vkey", scope: keys.ScopeSuperadmin, ok: 200, check: func(t *testing.T, target string, r response) {
			assert.Contains(t, string(r.body), "custos.test/api/"+target+"+")
		}},
		// The matrix runs on a single node: the route is there (scope
		// checked like any other) and says there is no cluster.
		{method: "GET", path: "/v1/cluster", scope: keys.ScopeRead, ok: 404, check: func(t *testing.T, _ string, r response) {
			assert.Contains(t, r.detail(t), "single node")
		}},
	}
}

// TestRouteTableMatchesSpec pins the package's one route table to the
// product's list of routes and scopes.
func TestRouteTableMatchesSpec(t *testing.T) {
	t.Parallel()
	want := map[string]keys.Scope{}
	for _, r := range routeSpecs() {
		want[r.method+" "+r.path] = r.scope
	}
	assert.Equal(t, want, httpapi.RouteScopes())
}

// keyStates are the credentials the matrix presents.
type keyState struct {
	name string
	// authenticates: the key is accepted (scope aside).
	authenticates bool
	missing       bool
}

func keyStates() []keyState {
	return []keyState{
		{name: "valid", authenticates: true},
		{name: "inside-grace", authenticates: true},
		{name: "expired"},
		{name: "revoked"},
		{name: "rotated-away"},
		{name: "garbage"},
		{name: "wrong-checksum"},
		{name: "missing", missing: true},
	}
}

var allScopes = []keys.Scope{keys.ScopeAdmin, keys.ScopeRead, keys.ScopeEvaluate}

// TestAuthMatrix calls every route with a key of every scope in every state
// and checks status and body against routeSpecs.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()

	// creds[scope][state] is the X-API-Key value sent ("" sends none).
	creds := map[keys.Scope]map[string]string{}
	for _, sc := range allScopes {
		creds[sc] = map[string]string{"missing": "", "garbage": "garbage-" + string(sc)}
		_, creds[sc]["expired"] = s.createKey(t, "expired-"+string(sc), string(sc), 1)
	}
	s.clock.Advance(48 * time.Hour)
	for _, sc := range allScopes {
		_, valid := s.createKey(t, "valid-"+string(sc), string(sc), 0)
		creds[sc]["valid"] = valid
		creds[sc]["wrong-checksum"] = breakChecksum(valid)

		id, key := s.createKey(t, "revoked-"+string(sc), string(sc), 0)
		_, err := s.ledger.RevokeKey(ctx, writeside.ActorInit, "", id)
		require.NoError(t, err)
		creds[sc]["revoked"] = key

		id, key = s.createKey(t, "rotated-"+string(sc), string(sc), 0)
		_, _, err = s.ledger.RotateKey(ctx, writeside.ActorInit, keys.RotateCommand{KeyID: id})
		require.NoError(t, err)
		creds[sc]["rotated-away"] = key

		id, key = s.createKey(t, "grace-"+string(sc), string(sc), 0)
		_, _, err = s.ledger.RotateKey(ctx, writeside.ActorInit, keys.RotateCommand{KeyID: id, GraceSeconds: ptr(3600)})
		require.NoError(t, err)
		creds[sc]["inside-grace"] = key
	}

	// A superadmin key passes the superadmin routes alone.
	for _, rt := range routeSpecs() {
		if rt.scope == httpapi.NoAuth {
			continue
		}
		t.Run(fmt.Sprintf("%s_%s/superadmin", rt.method, rt.path), func(t *testing.T) {
			t.Parallel()
			path, target := target(t, s, rt.path)
			body := rt.body
			if rt.newBody != nil {
				body = rt.newBody()
			}
			r := s.do(t, request{method: rt.method, path: path, key: s.superadmin, body: body})
			if rt.scope != keys.ScopeSuperadmin {
				require.Equal(t, http.StatusForbidden, r.status, "body %s", r.body)
				assert.Equal(t, fmt.Sprintf("Insufficient scope: %s %s requires %s.", rt.method, rt.path, rt.scope), r.detail(t))
				return
			}
			require.Equal(t, rt.ok, r.status, "body %s", r.body)
			rt.check(t, target, r)
		})
	}
	for _, rt := range routeSpecs() {
		for _, sc := range allScopes {
			for _, st := range keyStates() {
				name := fmt.Sprintf("%s_%s/%s/%s", rt.method, rt.path, sc, st.name)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					path, target := target(t, s, rt.path)
					body := rt.body
					if rt.newBody != nil {
						body = rt.newBody()
					}
					r := s.do(t, request{method: rt.method, path: path, key: creds[sc][st.name], body: body})

					switch {
					case rt.scope == httpapi.NoAuth:
						require.Equal(t, rt.ok, r.status, "body %s", r.body)
						rt.check(t, target, r)
						return
					case st.missing:
						require.Equal(t, http.StatusUnauthorized, r.status, "body %s", r.body)
						assert.Equal(t, "Missing API key.", r.detail(t))
					case !st.authenticates:
						require.Equal(t, http.StatusForbidden, r.status, "body %s", r.body)
						assert.Equal(t, "Invalid or revoked API key.", r.detail(t))
					case !sc.Allows(rt.scope):
						require.Equal(t, http.StatusForbidden, r.status, "body %s", r.body)
						assert.Equal(t, fmt.Sprintf("Insufficient scope: %s %s requires %s.", rt.method, rt.path, rt.scope), r.detail(t))
					default:
						require.Equal(t, rt.ok, r.status, "body %s", r.body)
						rt.check(t, target, r)
						return
					}
					// Rejected: the target is untouched.
					if strings.Contains(rt.path, ":key_id") {
						k, err := s.ledger.Key(target)
						require.NoError(t, err)
						assert.Nil(t, k.RevokedAt)
						assert.Empty(t, k.RotatedTo)
					}
				})
			}
		}
	}
}

// breakChecksum returns key with its last checksum character changed: well
// formed, wrong checksum.
func breakChecksum(key string) string {
	last := key[len(key)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	bad := key[:len(key)-1] + string(repl)
	if keys.CheckFormat(bad) == nil {
		panic("breakChecksum produced a valid key")
	}
	return bad
}
