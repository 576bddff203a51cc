package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/keys"
)

// noAuth marks a route any caller may use without an API key. It is not a
// scope the keys package knows, so keys.Scope.Allows never accepts it: used
// by mistake as a requirement it denies everything.
const noAuth keys.Scope = "none"

// evaluatePath is the hot path: the access log treats its answers apart.
const evaluatePath = "/v1/context/evaluate"

// routeScopes is the route table: for every "METHOD /route" (the path as
// registered, with :params) the least scope a key needs, or noAuth. The
// authorize middleware enforces it for every request; New refuses to start
// when it and the registered routes disagree. A new route starts here.
func routeScopes() map[string]keys.Scope {
	return map[string]keys.Scope{
		"GET /healthz":                                noAuth,
		"GET /readyz":                                 noAuth,
		"GET /metrics":                                noAuth,
		"GET /openapi.json":                           noAuth,
		"POST /v1/keys":                               keys.ScopeAdmin,
		"GET /v1/keys":                                keys.ScopeRead,
		"GET /v1/keys/:key_id":                        keys.ScopeRead,
		"POST /v1/keys/:key_id/rotate":                keys.ScopeAdmin,
		"DELETE /v1/keys/:key_id":                     keys.ScopeAdmin,
		"GET /v1/audit/verify":                        keys.ScopeRead,
		"GET /v1/policies":                            keys.ScopeRead,
		"GET /v1/policies/:policy_id":                 keys.ScopeRead,
		"POST /v1/policies":                           keys.ScopeAdmin,
		"PUT /v1/policies/:policy_id":                 keys.ScopeAdmin,
		"DELETE /v1/policies/:policy_id":              keys.ScopeAdmin,
		"POST /v1/context/evaluate":                   keys.ScopeEvaluate,
		"POST /v1/agents":                             keys.ScopeAdmin,
		"GET /v1/agents":                              keys.ScopeRead,
		"GET /v1/agents/:agent_id":                    keys.ScopeRead,
		"PUT /v1/agents/:agent_id":                    keys.ScopeAdmin,
		"PATCH /v1/agents/:agent_id/status":           keys.ScopeAdmin,
		"DELETE /v1/agents/:agent_id":                 keys.ScopeAdmin,
		"GET /v1/audit/sessions/:session_id":          keys.ScopeRead,
		"GET /v1/audit/events":                        keys.ScopeRead,
		"GET /v1/audit/export":                        keys.ScopeRead,
		"GET /v1/keys/history":                        keys.ScopeRead,
		"POST /v1/admin/backup":                       keys.ScopeSuperadmin,
		"GET /v1/alerts":                              keys.ScopeRead,
		"GET /v1/alerts/rules":                        keys.ScopeAdmin,
		"POST /v1/alerts/rules":                       keys.ScopeAdmin,
		"DELETE /v1/alerts/rules/:rule_id":            keys.ScopeAdmin,
		"GET /v1/alerts/dead-letters":                 keys.ScopeAdmin,
		"GET /v1/audit/checkpoint":                    keys.ScopeRead,
		"GET /v1/audit/vkey":                          keys.ScopeRead,
		"GET /v1/audit/proof/inclusion":               keys.ScopeRead,
		"GET /v1/audit/proof/consistency":             keys.ScopeRead,
		"GET /v1/audit/events/:event_id/receipt":      keys.ScopeRead,
		"POST /v1/tenants":                            keys.ScopeSuperadmin,
		"GET /v1/tenants":                             keys.ScopeSuperadmin,
		"POST /v1/admin/tenants":                      keys.ScopeSuperadmin,
		"GET /v1/admin/tenants":                       keys.ScopeSuperadmin,
		"GET /v1/tenants/:tenant_id":                  keys.ScopeSuperadmin,
		"POST /v1/tenants/:tenant_id/suspend":         keys.ScopeSuperadmin,
		"POST /v1/tenants/:tenant_id/resume":          keys.ScopeSuperadmin,
		"POST /v1/tenants/:tenant_id/admin-keys":      keys.ScopeSuperadmin,
		"GET /v1/tenants/:tenant_id/audit/verify":     keys.ScopeSuperadmin,
		"GET /v1/tenants/:tenant_id/audit/export":     keys.ScopeSuperadmin,
		"GET /v1/tenants/:tenant_id/audit/checkpoint": keys.ScopeSuperadmin,
		"GET /v1/tenants/:tenant_id/audit/vkey":       keys.ScopeSuperadmin,
		"GET /v1/cluster":                             keys.ScopeRead,
	}
}

type route struct {
	method, path string
	handler      echo.HandlerFunc
}

// routes lists every handler the server registers.
func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/healthz", s.healthz},
		{http.MethodGet, "/readyz", s.readyz},
		{http.MethodGet, "/metrics", s.serveMetrics},
		{http.MethodGet, "/openapi.json", s.serveOpenAPI},
		{http.MethodPost, "/v1/keys", s.createKey},
		{http.MethodGet, "/v1/keys", s.listKeys},
		{http.MethodGet, "/v1/keys/:key_id", s.getKey},
		{http.MethodPost, "/v1/keys/:key_id/rotate", s.rotateKey},
		{http.MethodDelete, "/v1/keys/:key_id", s.revokeKey},
		{http.MethodGet, "/v1/audit/verify", s.verifyChain},
		{http.MethodGet, "/v1/policies", s.listPolicies},
		{http.MethodGet, "/v1/policies/:policy_id", s.getPolicy},
		{http.MethodPost, "/v1/policies", s.createPolicy},
		{http.MethodPut, "/v1/policies/:policy_id", s.updatePolicy},
		{http.MethodDelete, "/v1/policies/:policy_id", s.deletePolicy},
		{http.MethodPost, evaluatePath, s.evaluate},
		{http.MethodPost, "/v1/agents", s.registerAgent},
		{http.MethodGet, "/v1/agents", s.listAgents},
		{http.MethodGet, "/v1/agents/:agent_id", s.getAgent},
		{http.MethodPut, "/v1/agents/:agent_id", s.updateAgent},
		{http.MethodPatch, "/v1/agents/:agent_id/status", s.changeAgentStatus},
		{http.MethodDelete, "/v1/agents/:agent_id", s.retireAgent},
		{http.MethodGet, "/v1/audit/sessions/:session_id", s.sessionTrail},
		{http.MethodGet, "/v1/audit/events", s.listEvents},
		{http.MethodGet, "/v1/audit/export", s.exportEvents},
		{http.MethodGet, "/v1/keys/history", s.keyHistory},
		{http.MethodPost, "/v1/admin/backup", s.backup},
		{http.MethodGet, "/v1/alerts", s.listAlerts},
		{http.MethodGet, "/v1/alerts/rules", s.listAlertRules},
		{http.MethodPost, "/v1/alerts/rules", s.setAlertRule},
		{http.MethodDelete, "/v1/alerts/rules/:rule_id", s.deleteAlertRule},
		{http.MethodGet, "/v1/alerts/dead-letters", s.listDeadLetters},
		{http.MethodGet, "/v1/audit/checkpoint", s.getCheckpoint},
		{http.MethodGet, "/v1/audit/vkey", s.getVerifierKey},
		{http.MethodGet, "/v1/audit/proof/inclusion", s.inclusion},
		{http.MethodGet, "/v1/audit/proof/consistency", s.consistency},
		{http.MethodGet, "/v1/audit/events/:event_id/receipt", s.receipt},
		{http.MethodPost, "/v1/tenants", s.createTenant},
		{http.MethodGet, "/v1/tenants", s.listTenants},
		// AutoPIL's shape of the same two routes.
		{http.MethodPost, "/v1/admin/tenants", s.createTenant},
		{http.MethodGet, "/v1/admin/tenants", s.listTenants},
		{http.MethodGet, "/v1/tenants/:tenant_id", s.getTenant},
		{http.MethodPost, "/v1/tenants/:tenant_id/suspend", s.suspendTenant},
		{http.MethodPost, "/v1/tenants/:tenant_id/resume", s.resumeTenant},
		{http.MethodPost, "/v1/tenants/:tenant_id/admin-keys", s.mintAdminKey},
		{http.MethodGet, "/v1/tenants/:tenant_id/audit/verify", s.asTenant(s.verifyChain)},
		{http.MethodGet, "/v1/tenants/:tenant_id/audit/export", s.asTenant(s.exportEvents)},
		{http.MethodGet, "/v1/tenants/:tenant_id/audit/checkpoint", s.asTenant(s.getCheckpoint)},
		{http.MethodGet, "/v1/tenants/:tenant_id/audit/vkey", s.asTenant(s.getVerifierKey)},
		{http.MethodGet, "/v1/cluster", s.clusterStatus},
	}
}
