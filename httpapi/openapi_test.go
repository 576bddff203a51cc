package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/docs"
	"github.com/custos-dev/custos/httpapi"
)

// scopeExtension names the operation extension that documents the scope a
// route needs; "none" stands for the route table's noAuth.
const scopeExtension = "x-custos-scope"

// loadOpenAPI loads and validates docs/openapi.yaml as the binary embeds it.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPIYAML)
	require.NoError(t, err, "docs/openapi.yaml does not load")
	require.NoError(t, doc.Validate(loader.Context), "docs/openapi.yaml is not a valid OpenAPI document")
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	scheme := doc.Components.SecuritySchemes["ApiKeyAuth"]
	require.NotNil(t, scheme, "security scheme ApiKeyAuth")
	assert.Equal(t, "apiKey", scheme.Value.Type)
	assert.Equal(t, "header", scheme.Value.In)
	assert.Equal(t, "X-API-Key", scheme.Value.Name)
}

// routeParam matches an echo path parameter (":key_id").
var routeParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// tableOperations returns the route table as "METHOD /path/{param}" -> scope.
func tableOperations(t *testing.T) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for id, scope := range httpapi.RouteScopes() {
		method, path, ok := strings.Cut(id, " ")
		require.True(t, ok, "route table entry %q", id)
		out[method+" "+routeParam.ReplaceAllString(path, "{$1}")] = string(scope)
	}
	return out
}

// documentOperations returns every operation of doc as "METHOD /path" ->
// its documented scope ("" when it has none).
func documentOperations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := make(map[string]*openapi3.Operation)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[strings.ToUpper(method)+" "+path] = op
		}
	}
	return out
}

func documentedScope(op *openapi3.Operation) string {
	s, _ := op.Extensions[scopeExtension].(string)
	return s
}

// TestOpenAPIMatchesRouteTable checks route parity both ways, the scope of
// every operation, and that each operation documents the answers every
// route of its kind can give.
func TestOpenAPIMatchesRouteTable(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	table := tableOperations(t)
	documented := documentOperations(doc)

	var missing, extra, wrongScope []string
	for id, scope := range table {
		op, ok := documented[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case documentedScope(op) != scope:
			wrongScope = append(wrongScope, fmt.Sprintf("%s: documented %s %q, route table %q",
				id, scopeExtension, documentedScope(op), scope))
		}
	}
	for id := range documented {
		if _, ok := table[id]; !ok {
			extra = append(extra, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(wrongScope)
	assert.Empty(t, missing, "routes the server registers but docs/openapi.yaml does not document")
	assert.Empty(t, extra, "operations docs/openapi.yaml documents but the server does not register")
	assert.Empty(t, wrongScope, "operations whose documented scope differs from the route table")

	noAuth := string(httpapi.NoAuth)
	for id, op := range documented {
		scope, ok := table[id]
		if !ok {
			continue
		}
		has := func(status int) bool { return op.Responses.Status(status) != nil }
		assert.True(t, has(http.StatusInternalServerError), "%s: documents no 500", id)
		if scope == noAuth {
			assert.True(t, op.Security != nil && len(*op.Security) == 0,
				"%s: a public route must say security: []", id)
		} else {
			assert.Nil(t, op.Security, "%s: an authenticated route uses the document's X-API-Key requirement", id)
			assert.True(t, has(http.StatusUnauthorized) && has(http.StatusForbidden), "%s: documents no 401 or 403", id)
			assert.True(t, has(http.StatusServiceUnavailable), "%s: documents no 503", id)
		}
		if op.RequestBody != nil {
			for _, status := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType} {
				assert.True(t, has(status), "%s: takes a body but documents no %d", id, status)
			}
		}
	}
}

// TestOpenAPIServedAsJSON checks GET /openapi.json: public, JSON, and the
// same document as docs/openapi.yaml.
func TestOpenAPIServedAsJSON(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.get(t, "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err)
	assert.Equal(t, "application/json", mt)

	served, err := openapi3.NewLoader().LoadFromData(r.body)
	require.NoError(t, err, "GET /openapi.json does not load")
	fromYAML := loadOpenAPI(t)
	want, err := fromYAML.MarshalJSON()
	require.NoError(t, err)
	got, err := served.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))

	// The raw JSON holds the extensions verbatim.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(r.body, &raw))
	assert.Equal(t, "admin", raw["paths"].(map[string]any)["/v1/keys"].(map[string]any)["post"].(map[string]any)[scopeExtension])
}

// requestCheck says what the document must say about a request.
type requestCheck int

const (
	// requestValid: the request must validate against the document.
	requestValid requestCheck = iota
	// requestInvalid: the document must reject it too (deliberately bad
	// input the server refuses).
	requestInvalid
	// requestUnchecked: the validator cannot tell (an unknown query
	// parameter, data after the body's object, a body only the size limit
	// rejects); only the response is validated.
	requestUnchecked
)

// contract drives a real server and validates every request and response
// against docs/openapi.yaml.
type contract struct {
	s      *stack
	doc    *openapi3.T
	router routers.Router
}

func newContract(t *testing.T, s *stack) *contract {
	t.Helper()
	doc := loadOpenAPI(t)
	// Route by path only: the document's server is the default address,
	// the test server listens elsewhere.
	doc.Servers = openapi3.Servers{{URL: s.srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &contract{s: s, doc: doc, router: router}
}

// apiKeyAuth accepts any non-empty X-API-Key: whether the key is good is
// the server's to say (403), the document only requires the header.
func apiKeyAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "ApiKeyAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	if in.RequestValidationInput.Request.Header.Get("X-API-Key") == "" {
		return errors.New("no X-API-Key header")
	}
	return nil
}

func (r request) newHTTP(t *testing.T, base string) *http.Request {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
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
	return req
}

// call sends r to the server, requires status want, and validates the
// request (as check says) and the response against the document.
func (c *contract) call(t *testing.T, r request, want int, check requestCheck) response {
	t.Helper()
	// The validator reads and may rewrite the request, so it gets its own.
	vreq := r.newHTTP(t, c.s.srv.URL)
	route, params, err := c.router.FindRoute(vreq)
	require.NoError(t, err, "%s %s is not in docs/openapi.yaml", r.method, r.path)
	opts := &openapi3filter.Options{
		AuthenticationFunc:    apiKeyAuth,
		IncludeResponseStatus: true, // an undocumented status fails
		SkipSettingDefaults:   true,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	switch check {
	case requestValid:
		require.NoError(t, reqErr, "%s %s: the document rejects a request the server accepts", r.method, r.path)
	case requestInvalid:
		require.Error(t, reqErr, "%s %s: the document accepts a request the server rejects", r.method, r.path)
	}

	resp, err := c.s.srv.Client().Do(r.newHTTP(t, c.s.srv.URL))
	require.NoError(t, err)
	defer resp.Body.Close()
	got := readResponse(t, resp)
	require.Equal(t, want, got.status, "%s %s: body %s", r.method, r.path, got.body)

	ct := got.header.Get("Content-Type")
	stream := got.status == http.StatusOK && (strings.HasPrefix(ct, "application/x-ndjson") || strings.HasPrefix(ct, "text/csv"))
	respOpts := *opts
	// JSON Lines and CSV bodies are not one JSON document, so the
	// validator cannot check them (it has no decoder for these types);
	// checkStream checks their content type against the document and each
	// line against its schema instead.
	respOpts.ExcludeResponseBody = stream
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 got.status,
		Header:                 got.header,
		Body:                   io.NopCloser(bytes.NewReader(got.body)),
		Options:                &respOpts,
	})
	require.NoError(t, err, "%s %s: the %d response does not match docs/openapi.yaml: %s", r.method, r.path, got.status, got.body)
	if stream {
		c.checkStream(t, route, got)
	}
	return got
}

// checkStream checks a JSON Lines or CSV answer: its content type is one
// the operation documents, each JSON line matches lineSchema, a CSV body
// starts with the documented header.
func (c *contract) checkStream(t *testing.T, route *routers.Route, r response) {
	t.Helper()
	ct := r.header.Get("Content-Type")
	ok := route.Operation.Responses.Status(r.status).Value.Content.Get(ct)
	require.NotNil(t, ok, "%s %s: content type %q is not documented", route.Method, route.Path, ct)
	lineSchema, csvHeader := "ExportLine", httpapi.CSVHeader
	if route.Path == "/v1/keys/history" {
		lineSchema = "KeyHistoryRow"
		csvHeader = []string{"time", "fact", "key_id", "name", "scope", "actor", "related_key_id", "seq", "event_id"}
	}
	if strings.HasPrefix(ct, "text/csv") {
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		require.NoError(t, err)
		require.NotEmpty(t, rows)
		assert.Equal(t, csvHeader, rows[0])
		assert.Contains(t, route.Operation.Description, strings.Join(csvHeader, ","), "the documented CSV header")
		return
	}
	schema := c.doc.Components.Schemas[lineSchema]
	require.NotNil(t, schema, "schema %s", lineSchema)
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var v any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "line %d", n)
		require.NoError(t, schema.Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()),
			"%s line %d does not match %s: %s", route.Path, n, lineSchema, sc.Bytes())
	}
	require.NoError(t, sc.Err())
	require.Positive(t, n, "%s: empty stream", route.Path)
}

// TestOpenAPIDescribesRealResponses drives a scripted session through a
// real server and validates every request and response with the document.
func TestOpenAPIDescribesRealResponses(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newContract(t, s)
	admin := s.admin
	get := func(path, key string) request { return request{method: http.MethodGet, path: path, key: key} }
	send := func(method, path, key, body string) request {
		return request{method: method, path: path, key: key, body: body}
	}
	field := func(r response, name string) string {
		v, _ := r.object(t)[name].(string)
		require.NotEmpty(t, v, "%s in %s", name, r.body)
		return v
	}

	// Public routes.
	c.call(t, get("/healthz", ""), http.StatusOK, requestValid)
	c.call(t, get("/readyz", ""), http.StatusOK, requestValid)
	c.call(t, get("/metrics", ""), http.StatusOK, requestValid)
	c.call(t, get("/openapi.json", ""), http.StatusOK, requestValid)

	// Keys: create, list, get, rotate, revoke, revoke again.
	reader := c.call(t, send(http.MethodPost, "/v1/keys", admin, `{"name":"auditor","scope":"read","expires_days":30}`),
		http.StatusCreated, requestValid)
	readerKey := field(reader, "key")
	agentKey := field(c.call(t, send(http.MethodPost, "/v1/keys", admin,
		`{"name":"loan-agent-prod","scope":"evaluate","agent_id":"loan-agent","expires_at":"2031-06-01T00:00:00Z"}`),
		http.StatusCreated, requestValid), "key")
	victim := field(c.call(t, send(http.MethodPost, "/v1/keys", admin, `{"name":"to-rotate","scope":"evaluate"}`),
		http.StatusCreated, requestValid), "key_id")
	c.call(t, get("/v1/keys", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/keys/"+victim, readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/keys/key_01JUNKJUNKJUNKJUNKJUNKJUNK", readerKey), http.StatusNotFound, requestValid)
	rotated := field(c.call(t, send(http.MethodPost, "/v1/keys/"+victim+"/rotate", admin, `{"grace_seconds":60}`),
		http.StatusCreated, requestValid), "key_id")
	c.call(t, send(http.MethodPost, "/v1/keys/"+victim+"/rotate", admin, ""), http.StatusConflict, requestValid)
	c.call(t, send(http.MethodDelete, "/v1/keys/"+rotated, admin, ""), http.StatusOK, requestValid)
	c.call(t, send(http.MethodDelete, "/v1/keys/"+rotated, admin, ""), http.StatusConflict, requestValid)
	c.call(t, get("/v1/keys?as_of=2031-03-04T05:06:07Z", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/keys/"+victim+"?as_of=2020-01-01T00:00:00Z", readerKey), http.StatusNotFound, requestValid)

	// Policies.
	policyID := field(c.call(t, send(http.MethodPost, "/v1/policies", admin, lendingPolicy), http.StatusCreated, requestValid), "policy_id")
	c.call(t, send(http.MethodPost, "/v1/policies", admin, lendingPolicy), http.StatusConflict, requestValid)
	c.call(t, get("/v1/policies", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/policies/"+policyID, readerKey), http.StatusOK, requestValid)
	c.call(t, send(http.MethodPut, "/v1/policies/"+policyID, admin, strings.Replace(lendingPolicy, `"kyc"]`, `"kyc", "audit"]`, 1)),
		http.StatusOK, requestValid)
	other := field(c.call(t, send(http.MethodPost, "/v1/policies", admin,
		`{"name":"scratch","agent_role":"scratch","allowed_actions":[],"permitted_agent_ids":["bot-*"]}`),
		http.StatusCreated, requestValid), "policy_id")
	c.call(t, send(http.MethodDelete, "/v1/policies/"+other, admin, ""), http.StatusOK, requestValid)
	c.call(t, get("/v1/policies/"+other, readerKey), http.StatusNotFound, requestValid)

	// Agents: approve the bootstrapped one, run another through its life.
	c.call(t, send(http.MethodPatch, "/v1/agents/loan-agent/status", admin, `{"status":"approved"}`), http.StatusOK, requestValid)
	c.call(t, send(http.MethodPost, "/v1/agents", admin,
		`{"agent_id":"doc-agent","agent_role":"analyst","owner":"risk","framework":"langchain","permitted_roles":["reviewer"]}`),
		http.StatusCreated, requestValid)
	c.call(t, send(http.MethodPost, "/v1/agents", admin, `{"agent_id":"doc-agent","agent_role":"analyst"}`), http.StatusConflict, requestValid)
	c.call(t, get("/v1/agents?status=approved&framework=langchain", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/agents/doc-agent", readerKey), http.StatusOK, requestValid)
	c.call(t, send(http.MethodPut, "/v1/agents/doc-agent", admin, `{"display_name":"Doc agent","policy_name":null}`), http.StatusOK, requestValid)
	c.call(t, send(http.MethodDelete, "/v1/agents/doc-agent", admin, ""), http.StatusOK, requestValid)
	c.call(t, send(http.MethodDelete, "/v1/agents/doc-agent", admin, ""), http.StatusConflict, requestValid)
	c.call(t, send(http.MethodPatch, "/v1/agents/doc-agent/status", admin, `{"status":"approved"}`), http.StatusConflict, requestValid)
	c.call(t, get("/v1/agents/nobody", readerKey), http.StatusNotFound, requestValid)

	// Evaluate: ALLOW, DENY by policy, DENY by identity.
	allow := c.call(t, send(http.MethodPost, "/v1/context/evaluate", agentKey, evalBody("s-doc", "crm", "medium", "loan_review")),
		http.StatusOK, requestValid)
	assert.Equal(t, "ALLOW", allow.object(t)["decision"])
	deny := c.call(t, send(http.MethodPost, "/v1/context/evaluate", agentKey, evalBody("s-doc", "hr_records", "low", "")),
		http.StatusOK, requestValid)
	assert.Equal(t, "policy", deny.object(t)["denial_type"])
	ghost := c.call(t, send(http.MethodPost, "/v1/context/evaluate", readerKey,
		`{"agent_role":"loan_officer","agent_id":"ghost","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":"s-ghost","action":"read","principal_claims":["group:a"]}`),
		http.StatusOK, requestValid)
	assert.Equal(t, "identity", ghost.object(t)["denial_type"])
	assert.Nil(t, ghost.object(t)["policy_id"])

	// Audit.
	c.call(t, get("/v1/audit/sessions/s-doc", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/audit/sessions/never-used", readerKey), http.StatusNotFound, requestValid)
	page := c.call(t, get("/v1/audit/events?limit=2", readerKey), http.StatusOK, requestValid)
	require.NotNil(t, page.object(t)["next_after_seq"], "a first page of 2 has a next page")
	c.call(t, get("/v1/audit/events?type=decision.made&decision=DENY&session_id=s-doc&from=2031-03-04T00:00:00Z&to=2031-03-05T00:00:00Z",
		readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/audit/verify", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/audit/export", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/audit/export?format=csv&from_seq=2&to_seq=5", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/audit/export?format=jsonl&type=decision.made", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/keys/history", readerKey), http.StatusOK, requestValid)
	c.call(t, get("/v1/keys/history?format=csv", readerKey), http.StatusOK, requestValid)

	// Backup.
	c.call(t, send(http.MethodPost, "/v1/admin/backup", s.superadmin, `{"name":"doc-backup"}`), http.StatusCreated, requestValid)
	c.call(t, send(http.MethodPost, "/v1/admin/backup", s.superadmin, `{"name":"doc-backup"}`), http.StatusConflict, requestValid)
	c.call(t, send(http.MethodPost, "/v1/admin/backup", s.superadmin, `{"name":"a..b"}`), http.StatusUnprocessableEntity, requestValid)
	c.call(t, send(http.MethodPost, "/v1/admin/backup", s.superadmin, `{"name":"../escape"}`), http.StatusUnprocessableEntity, requestInvalid)

	// Bad input.
	c.call(t, send(http.MethodPost, "/v1/keys", admin, `{"nmae":"x","scope":"read"}`), http.StatusBadRequest, requestInvalid)
	// kin-openapi's JSON decoder stops after the first value; the server
	// refuses trailing data.
	c.call(t, send(http.MethodPost, "/v1/keys", admin, `{"name":"x","scope":"read"} {}`), http.StatusBadRequest, requestUnchecked)
	c.call(t, send(http.MethodPost, "/v1/keys", admin, `{"name":"x","scope":"root"}`), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/keys", admin, ""), http.StatusUnprocessableEntity, requestValid)
	c.call(t, request{method: http.MethodPost, path: "/v1/keys", key: admin, body: `{"name":"x","scope":"read"}`, contentType: "text/plain"},
		http.StatusUnsupportedMediaType, requestInvalid)
	big := fmt.Sprintf(`{"name":%q,"scope":"read"}`, strings.Repeat("x", httpapi.MaxBodyBytes))
	c.call(t, send(http.MethodPost, "/v1/keys", admin, big), http.StatusRequestEntityTooLarge, requestUnchecked)
	c.call(t, send(http.MethodPost, "/v1/keys/"+victim+"/rotate", admin, `{"grace_seconds":-1}`), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/context/evaluate", agentKey, `{}`), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/context/evaluate", agentKey,
		`{"agent_role":"loan_officer","user_id":"u","source_id":"crm","sensitivity_level":"secret","session_id":"s"}`),
		http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/policies", admin, `{"name":"p","agent_role":"r","max_sensitivity":"extreme"}`),
		http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPatch, "/v1/agents/loan-agent/status", admin, `{"status":"asleep"}`), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/agents", admin, `{"agent_id":"has space","agent_role":"r"}`), http.StatusUnprocessableEntity, requestInvalid)
	// kin-openapi does not reject unknown query parameters; the server does.
	c.call(t, get("/v1/keys?limit=5", readerKey), http.StatusBadRequest, requestUnchecked)
	c.call(t, get("/v1/audit/events?decision=MAYBE", readerKey), http.StatusBadRequest, requestInvalid)
	c.call(t, get("/v1/audit/events?limit=0", readerKey), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, get("/v1/audit/export?format=xml", readerKey), http.StatusBadRequest, requestInvalid)
	c.call(t, get("/v1/audit/export?from_seq=5&to_seq=2", readerKey), http.StatusUnprocessableEntity, requestValid)
	c.call(t, get("/v1/keys/history?format=pdf", readerKey), http.StatusBadRequest, requestInvalid)
	c.call(t, get("/v1/audit/events?from=yesterday", readerKey), http.StatusUnprocessableEntity, requestInvalid)
	c.call(t, get("/v1/agents?as_of=now", readerKey), http.StatusUnprocessableEntity, requestInvalid)

	// Authentication and scope.
	c.call(t, get("/v1/keys", ""), http.StatusUnauthorized, requestInvalid)
	c.call(t, send(http.MethodPost, "/v1/context/evaluate", "", evalBody("s-x", "crm", "low", "")), http.StatusUnauthorized, requestInvalid)
	c.call(t, get("/v1/keys", "cst_notakey"), http.StatusForbidden, requestValid)
	c.call(t, send(http.MethodPost, "/v1/keys", readerKey, `{"name":"x","scope":"read"}`), http.StatusForbidden, requestValid)
	c.call(t, get("/v1/audit/events", agentKey), http.StatusForbidden, requestValid)
	c.call(t, send(http.MethodDelete, "/v1/agents/loan-agent", readerKey, ""), http.StatusForbidden, requestValid)
}

// TestOpenAPIErrorResponsesShareOneShape checks that every documented
// error answer is the {"detail"} body.
func TestOpenAPIErrorResponsesShareOneShape(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	errSchema := doc.Components.Schemas["Error"]
	require.NotNil(t, errSchema)
	ops := documentOperations(doc)
	for _, id := range slices.Sorted(maps.Keys(ops)) {
		for code, ref := range ops[id].Responses.Map() {
			if code < "400" {
				continue
			}
			mt := ref.Value.Content.Get("application/json")
			require.NotNil(t, mt, "%s %s: no application/json error body", id, code)
			assert.Same(t, errSchema.Value, mt.Schema.Value, "%s %s: error body is not #/components/schemas/Error", id, code)
		}
	}
}
