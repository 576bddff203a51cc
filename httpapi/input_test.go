package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// badClass is one class of character an identifier may not hold.
type badClass struct {
	name  string
	value string // a value holding the character
	// free reports whether free text refuses it too.
	free bool
	// problem is the start of the problem the detail names.
	problem string
}

// invalidUTF8 stands in for an invalid byte in a JSON body: json.Marshal
// would turn the byte itself into U+FFFD, so bodies are marshalled with
// this marker and the byte is put in afterwards.
const invalidUTF8 = "INVALID-UTF8-MARKER"

var badClasses = []badClass{
	{"ESC sequence", "crm\x1b[31m", true, "must not contain control characters (U+001B"},
	{"NUL", "a\x00b", true, "must not contain control characters (U+0000"},
	{"unit separator", "a\x1fb", true, "must not contain control characters (U+001F"},
	{"DEL", "a\x7fb", true, "must not contain control characters (U+007F"},
	{"C1 CSI", "a\u009bb", true, "must not contain control characters (U+009B"},
	{"bidi override", "a\u202eb", false, "must not contain bidirectional controls (U+202E"},
	{"bidi isolate", "a\u2066b", false, "must not contain bidirectional controls (U+2066"},
	{"right-to-left mark", "a\u200fb", false, "must not contain bidirectional controls (U+200F"},
	{"zero-width space", "a\u200bb", false, "must not contain zero-width characters (U+200B"},
	{"word joiner", "a\u2060b", false, "must not contain zero-width characters (U+2060"},
	{"byte order mark", "\ufeffab", false, "must not contain zero-width characters (U+FEFF"},
	{"invalid UTF-8", invalidUTF8, true, "must be valid UTF-8"},
}

// bodyField is one identifier (or free-text) field of one route's body.
type bodyField struct {
	method, path string
	evaluate     bool   // sent with the evaluate key, else the admin key
	field        string // the field as the detail names it
	free         bool   // free text: keeps bidi and zero-width characters
	body         func(v string) map[string]any
}

func evalFields() []bodyField {
	base := func(set func(m map[string]any)) func(string) map[string]any {
		return func(v string) map[string]any {
			m := map[string]any{"agent_role": "loan_officer", "agent_id": "loan-agent", "user_id": "u-1",
				"source_id": "crm", "sensitivity_level": "low", "session_id": "s-1", "task_type": "kyc",
				"query": "income", "principal_claims": []string{"group:credit"}}
			set(m)
			return m
		}
	}
	var out []bodyField
	for _, f := range []string{"agent_role", "agent_id", "user_id", "source_id", "session_id", "task_type", "query"} {
		f := f
		out = append(out, bodyField{method: http.MethodPost, path: "/v1/context/evaluate", evaluate: true, field: f,
			free: f == "query", body: base(func(m map[string]any) { m[f] = vPlaceholder })})
	}
	out = append(out, bodyField{method: http.MethodPost, path: "/v1/context/evaluate", evaluate: true, field: "principal_claims[1]",
		body: base(func(m map[string]any) { m["principal_claims"] = []string{"ok", vPlaceholder} })})
	return out
}

// vPlaceholder marks where the bad value goes in a body template.
const vPlaceholder = "\x00VALUE\x00"

func policyFields(method, path string) []bodyField {
	base := func() map[string]any {
		return map[string]any{"name": "p-" + method, "agent_role": "role-" + method, "allowed_sources": []string{"crm"},
			"denied_sources": []string{"hr"}, "allowed_tasks": []string{"kyc"}, "denied_tasks": []string{"trade"},
			"permitted_agent_ids":            []string{"loan-*"},
			"task_bindings":                  []map[string]any{{"task": "kyc", "permitted_sources": []string{"crm"}}},
			"require_principal_entitlements": []map[string]any{{"sources": []string{"crm"}, "require_any": []string{"group:x"}}},
			"description":                    "d"}
	}
	set := []struct {
		field string
		free  bool
		set   func(m map[string]any)
	}{
		{"name", false, func(m map[string]any) { m["name"] = vPlaceholder }},
		{"agent_role", false, func(m map[string]any) { m["agent_role"] = vPlaceholder }},
		{"description", true, func(m map[string]any) { m["description"] = vPlaceholder }},
		{"industry", true, func(m map[string]any) { m["industry"] = vPlaceholder }},
		{"permitted_agent_ids[0]", false, func(m map[string]any) { m["permitted_agent_ids"] = []string{vPlaceholder} }},
		{"allowed_sources[0]", false, func(m map[string]any) { m["allowed_sources"] = []string{vPlaceholder} }},
		{"denied_sources[0]", false, func(m map[string]any) { m["denied_sources"] = []string{vPlaceholder} }},
		{"allowed_tasks[0]", false, func(m map[string]any) { m["allowed_tasks"] = []string{vPlaceholder} }},
		{"denied_tasks[0]", false, func(m map[string]any) { m["denied_tasks"] = []string{vPlaceholder} }},
		{"task_bindings[0].task", false, func(m map[string]any) {
			m["task_bindings"] = []map[string]any{{"task": vPlaceholder, "permitted_sources": []string{"crm"}}}
		}},
		{"task_bindings[0].permitted_sources[0]", false, func(m map[string]any) {
			m["task_bindings"] = []map[string]any{{"task": "kyc", "permitted_sources": []string{vPlaceholder}}}
		}},
		{"require_principal_entitlements[0].sources[0]", false, func(m map[string]any) {
			m["require_principal_entitlements"] = []map[string]any{{"sources": []string{vPlaceholder}, "require_any": []string{"g"}}}
		}},
		{"require_principal_entitlements[0].require_any[0]", false, func(m map[string]any) {
			m["require_principal_entitlements"] = []map[string]any{{"sources": []string{"crm"}, "require_any": []string{vPlaceholder}}}
		}},
	}
	if method == http.MethodPost {
		set = append(set, struct {
			field string
			free  bool
			set   func(m map[string]any)
		}{"policy_id", false, func(m map[string]any) { m["policy_id"] = vPlaceholder }})
	}
	var out []bodyField
	for _, s := range set {
		s := s
		out = append(out, bodyField{method: method, path: path, field: s.field, free: s.free,
			body: func(string) map[string]any { m := base(); s.set(m); return m }})
	}
	return out
}

func agentFields(method, path string) []bodyField {
	fields := []string{"agent_role", "display_name", "description", "owner", "owner_team", "framework", "permitted_roles[0]"}
	if method == http.MethodPost {
		fields = append(fields, "agent_id")
	}
	var out []bodyField
	for _, f := range fields {
		f := f
		out = append(out, bodyField{method: method, path: path, field: f, free: f == "description",
			body: func(string) map[string]any {
				m := map[string]any{"agent_role": "loan_officer"}
				if method == http.MethodPost {
					m["agent_id"] = "new-agent"
				}
				if f == "permitted_roles[0]" {
					m["permitted_roles"] = []string{vPlaceholder}
				} else {
					m[f] = vPlaceholder
				}
				return m
			}})
	}
	return out
}

// marshalWith returns the JSON of m with every placeholder replaced by v;
// the invalidUTF8 marker becomes a raw 0xFF byte.
func marshalWith(t *testing.T, m map[string]any, v string) string {
	t.Helper()
	raw := v == invalidUTF8
	if raw {
		v = "a" + invalidUTF8 + "b"
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	val, err := json.Marshal(v)
	require.NoError(t, err)
	ph, err := json.Marshal(vPlaceholder)
	require.NoError(t, err)
	b = bytes.ReplaceAll(b, ph, val)
	if raw {
		b = bytes.ReplaceAll(b, []byte(invalidUTF8), []byte{0xff})
	}
	return string(b)
}

// TestEveryIdentifierRefusesInvisibleCharacters sends every route's
// identifier fields, path parameters and query filters with each class
// of refused character: 400 naming the field and the character, and the
// chain head does not move.
func TestEveryIdentifierRefusesInvisibleCharacters(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	// Use the evaluate key once (records its key.used) and make that
	// durable with a synchronous write behind it.
	require.Equal(t, http.StatusOK, e.evaluate(t, e.agentKey, evalBody("warm", "crm", "low", "")).status)
	e.createKey(t, "sync", "read", 0)
	before := e.head(t)

	var fields []bodyField
	fields = append(fields, evalFields()...)
	fields = append(fields,
		bodyField{method: http.MethodPost, path: "/v1/keys", field: "name",
			body: func(string) map[string]any { return map[string]any{"name": vPlaceholder, "scope": "read"} }},
		bodyField{method: http.MethodPost, path: "/v1/keys", field: "agent_id",
			body: func(string) map[string]any {
				return map[string]any{"name": "k", "scope": "evaluate", "agent_id": vPlaceholder}
			}})
	fields = append(fields, policyFields(http.MethodPost, "/v1/policies")...)
	fields = append(fields, policyFields(http.MethodPut, "/v1/policies/"+e.policyID)...)
	fields = append(fields, agentFields(http.MethodPost, "/v1/agents")...)
	fields = append(fields, agentFields(http.MethodPut, "/v1/agents/loan-agent")...)

	for _, f := range fields {
		for _, c := range badClasses {
			if f.free && !c.free {
				continue // free text keeps it: TestFreeTextKeepsMarksAndJoiners
			}
			t.Run(f.method+" "+f.path+" "+f.field+" "+c.name, func(t *testing.T) {
				t.Parallel()
				key := e.admin
				if f.evaluate {
					key = e.agentKey
				}
				r := e.do(t, request{method: f.method, path: f.path, key: key, body: marshalWith(t, f.body(c.value), c.value)})
				require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
				field := f.field
				if c.value == invalidUTF8 {
					field, _, _ = strings.Cut(strings.Split(f.field, ".")[0], "[") // the body check names the top-level member
				}
				assert.Contains(t, r.detail(t), field+" "+c.problem)
				assert.True(t, strings.HasPrefix(r.detail(t), "Invalid request: "), r.detail(t))
				assert.Equal(t, before, e.head(t), "a refused request appends nothing")
			})
		}
	}

	pathRoutes := []struct{ method, path, param string }{
		{http.MethodGet, "/v1/keys/{}", "key_id"},
		{http.MethodPost, "/v1/keys/{}/rotate", "key_id"},
		{http.MethodDelete, "/v1/keys/{}", "key_id"},
		{http.MethodGet, "/v1/policies/{}", "policy_id"},
		{http.MethodPut, "/v1/policies/{}", "policy_id"},
		{http.MethodDelete, "/v1/policies/{}", "policy_id"},
		{http.MethodGet, "/v1/agents/{}", "agent_id"},
		{http.MethodPut, "/v1/agents/{}", "agent_id"},
		{http.MethodPatch, "/v1/agents/{}/status", "agent_id"},
		{http.MethodDelete, "/v1/agents/{}", "agent_id"},
		{http.MethodGet, "/v1/audit/sessions/{}", "session_id"},
	}
	for _, p := range pathRoutes {
		for _, c := range badClasses {
			t.Run(p.method+" "+p.path+" "+c.name, func(t *testing.T) {
				t.Parallel()
				v := c.value
				if v == invalidUTF8 {
					v = "a\xffb"
				}
				path := strings.Replace(p.path, "{}", url.PathEscape(v), 1)
				r := e.do(t, request{method: p.method, path: path, key: e.admin})
				require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", path, r.body)
				assert.Contains(t, r.detail(t), "Invalid request: path parameter "+p.param+" "+c.problem)
				assert.Equal(t, before, e.head(t))
			})
		}
	}

	queryRoutes := []struct{ path, param string }{
		{"/v1/audit/events", "key_id"}, {"/v1/audit/events", "agent_id"}, {"/v1/audit/events", "agent_role"},
		{"/v1/audit/events", "session_id"}, {"/v1/audit/events", "source_id"},
		{"/v1/audit/export", "source_id"}, {"/v1/agents", "owner"}, {"/v1/agents", "framework"},
	}
	for _, q := range queryRoutes {
		for _, c := range badClasses {
			t.Run("GET "+q.path+"?"+q.param+" "+c.name, func(t *testing.T) {
				t.Parallel()
				v := c.value
				if v == invalidUTF8 {
					v = "a\xffb"
				}
				r := e.get(t, q.path+"?"+url.Values{q.param: {v}}.Encode(), e.admin)
				require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
				assert.Contains(t, r.detail(t), "Invalid request: query parameter "+q.param+" "+c.problem)
			})
		}
	}
}

// TestFreeTextKeepsMarksAndJoiners checks the other side of the rule:
// free text keeps line breaks, tabs, bidi marks and joiners, and an old
// agent id's characters are still readable.
func TestFreeTextKeepsMarksAndJoiners(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	body, err := json.Marshal(map[string]any{"agent_role": "loan_officer", "agent_id": "loan-agent", "user_id": "u",
		"source_id": "crm", "sensitivity_level": "low", "session_id": "s-free",
		"query": "שלום\u200f עולם\n\tfamily 👨\u200d👩\u200d👧 \u202eRLO"})
	require.NoError(t, err)
	r := e.evaluate(t, e.agentKey, string(body))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "ALLOW", r.object(t)["decision"])

	r = e.postJSON(t, "/v1/agents", e.admin, `{"agent_id":"3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b","agent_role":"r",
		"description":"line one\nline two\u200f","display_name":"Prüfer 審査"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	for _, bad := range []string{"spiffe/claims", "-rf", ".hidden"} {
		r = e.postJSON(t, "/v1/agents", e.admin, `{"agent_id":"`+bad+`","agent_role":"r"}`)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", bad, r.body)
		assert.Contains(t, r.detail(t), "Invalid request: agent_id ")
	}
}
