package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/verify"
)

const wirePkg = "github.com/custos-dev/custos/httpapi/wire"

// lastBody is an http.RoundTripper that keeps the body of the last answer
// it carried, so a test can compare what the server sent with what the
// client made of it.
type lastBody struct {
	mu   sync.Mutex
	body []byte
	next http.RoundTripper
}

func (l *lastBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.body = b
	l.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (l *lastBody) last() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.body
}

// wireCoverage records which wire types a test saw and which fields of
// each were set in at least one value.
type wireCoverage struct {
	types  map[string]bool               // "pkgpath.Name"
	fields map[reflect.Type]map[int]bool // wire structs: indexes of fields seen set
}

func (w *wireCoverage) saw(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.saw(v.Elem())
		}
	case reflect.Slice:
		if k := v.Type().Elem().Kind(); k == reflect.Struct || k == reflect.Pointer {
			for i := range v.Len() {
				w.saw(v.Index(i))
			}
		}
	case reflect.Struct:
		t := v.Type()
		if t.Name() != "" {
			w.types[t.PkgPath()+"."+t.Name()] = true
		}
		if t.PkgPath() != wirePkg {
			return
		}
		if w.fields[t] == nil {
			w.fields[t] = map[int]bool{}
		}
		for i := range t.NumField() {
			if !v.Field(i).IsZero() {
				w.fields[t][i] = true
			}
			w.saw(v.Field(i))
		}
	}
}

// answer requires that got, the client's decoding of the server's last
// answer, encodes back to exactly the bytes the server sent.
func answer[T any](t *testing.T, w *wireCoverage, rec *lastBody, got T, err error) T {
	t.Helper()
	require.NoError(t, err)
	sameBytes(t, rec.last(), got, true)
	w.saw(reflect.ValueOf(got))
	return got
}

// sameBytes requires that v encodes to raw (echo's c.JSON ends a body with
// a newline).
func sameBytes(t *testing.T, raw []byte, v any, escapeHTML bool) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	require.NoError(t, enc.Encode(v))
	require.Equal(t, string(bytes.TrimSuffix(raw, []byte("\n"))), strings.TrimSuffix(buf.String(), "\n"), "%T", v)
}

// sent records a request body the server read: it must not have answered
// 400, which every unknown, repeated or mistyped field name gets.
func sent(t *testing.T, w *wireCoverage, req any, err error) {
	t.Helper()
	if err != nil {
		require.NotErrorIs(t, err, client.ErrMalformed, "%T was not read: %v", req, err)
	}
	w.saw(reflect.ValueOf(req))
}

// TestWireTypesRoundTrip drives every route that reads or writes a JSON
// body through the Go client against a real server: each answer, decoded
// into its wire type by the client and encoded again, gives back the
// server's bytes, and every request type is read by the server. It then
// requires that every exported type of package wire was seen, and every
// field of each wire struct was set at least once, so a new type or field
// cannot escape the check.
func TestWireTypesRoundTrip(t *testing.T) {
	t.Parallel()
	deadLetter := webhook.DeadLetter{AlertID: "alr_1", URL: "https://hooks.example/custos", Attempts: 5,
		LastError: "503 Service Unavailable", FailedAt: t0, Body: json.RawMessage(`{"alert_id":"alr_1"}`)}
	s := newStack(t, withAlerts(httpapi.AlertHooks{DeadLetters: func(string) []webhook.DeadLetter { return []webhook.DeadLetter{deadLetter} }}))
	ctx := context.Background()
	rec := &lastBody{next: s.srv.Client().Transport}
	c, err := client.New(s.srv.URL, client.WithAPIKey(s.admin), client.WithHTTPClient(&http.Client{Transport: rec}))
	require.NoError(t, err)
	w := &wireCoverage{types: map[string]bool{}, fields: map[reflect.Type]map[int]bool{}}
	rt := &roundTrip{t: t, w: w, rec: rec}
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }

	// Probes and errors: the client only reads their status and detail.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := rec.RoundTrip(mustRequest(t, http.MethodGet, s.srv.URL+path))
		require.NoError(t, err)
		_ = resp.Body.Close()
		var st wire.Status
		require.NoError(t, json.Unmarshal(rec.last(), &st))
		answer(t, w, rec, st, nil)
	}
	// A node of a cluster: its role on /readyz, and GET /v1/cluster.
	seqName, seqURL := "n0", "http://127.0.0.1:1"
	node := newStack(t, withCluster(clusterOf{status: wire.Cluster{Node: "n0", Role: wire.RoleSequencer,
		Chains: []wire.ClusterChain{{Chain: "default", Sequencer: &seqName, SequencerURL: &seqURL, StreamSeq: 9}},
		Nodes:  []wire.ClusterNode{{Node: "n0", URL: seqURL, ReportedAt: t0, Chains: []wire.NodeChain{{Chain: "default", AppliedSeq: 8, Lag: 1}}}}}}, time.Second))
	nodeRec := &lastBody{next: node.srv.Client().Transport}
	ready, err := nodeRec.RoundTrip(mustRequest(t, http.MethodGet, node.srv.URL+"/readyz"))
	require.NoError(t, err)
	_ = ready.Body.Close()
	var st wire.Status
	require.NoError(t, json.Unmarshal(nodeRec.last(), &st))
	require.Equal(t, wire.RoleSequencer, st.Role)
	answer(t, w, nodeRec, st, nil)
	nc, err := client.New(node.srv.URL, client.WithAPIKey(node.admin), client.WithHTTPClient(&http.Client{Transport: nodeRec}))
	require.NoError(t, err)
	check(nc.Cluster(ctx))(&roundTrip{t: t, w: w, rec: nodeRec})

	_, err = c.GetKey(ctx, "key_nope")
	require.ErrorIs(t, err, client.ErrNotFound)
	var eb wire.ErrorBody
	require.NoError(t, json.Unmarshal(rec.last(), &eb))
	answer(t, w, rec, eb, nil)

	// Policies.
	var lending wire.Policy
	require.NoError(t, json.Unmarshal([]byte(lendingPolicy), &lending))
	sent(t, w, lending, nil)
	created := check(c.CreatePolicy(ctx, lending))(rt)
	check(c.GetPolicy(ctx, created.PolicyID))(rt)
	created.Description = "lending, reviewed"
	check(c.UpdatePolicy(ctx, created.PolicyID, created))(rt)
	check(c.ListPolicies(ctx))(rt)

	// Agents.
	register := wire.RegisterAgentRequest{AgentID: "wire-agent", AgentRole: "loan_officer", DisplayName: "Wire",
		Description: "round trip", Owner: "ana", OwnerTeam: "lending", Framework: "langgraph",
		PolicyName: "lending-policy", PolicyID: created.PolicyID, PermittedRoles: []string{"auditor"}}
	sent(t, w, register, nil)
	check(c.RegisterAgent(ctx, register))(rt)
	update := wire.UpdateAgentRequest{AgentRole: str("loan_officer"), DisplayName: str("Wire 2"), Description: str("d"),
		Owner: str("bo"), OwnerTeam: str("risk"), Framework: str("crewai"), PolicyName: str("no-such-policy"), PolicyID: str(""),
		PermittedRoles: &[]string{"auditor", "teller"}}
	sent(t, w, update, nil)
	check(c.UpdateAgent(ctx, "wire-agent", update))(rt)
	check(c.UpdateAgent(ctx, "wire-agent", wire.UpdateAgentRequest{PolicyName: str("lending-policy")}))(rt)
	sent(t, w, wire.AgentStatusRequest{Status: client.AgentApproved}, nil)
	check(c.SetAgentStatus(ctx, "wire-agent", client.AgentApproved))(rt)
	check(c.GetAgent(ctx, "wire-agent"))(rt)
	check(c.ListAgents(ctx, client.AgentFilter{}))(rt)
	check(c.RetireAgent(ctx, "a-1"))(rt)

	// Keys.
	byDays := wire.CreateKeyRequest{Name: "wire-eval", Scope: "evaluate", ExpiresDays: num(30), AgentID: "wire-agent"}
	sent(t, w, byDays, nil)
	evalKey := check(c.CreateKey(ctx, byDays))(rt)
	byTime := wire.CreateKeyRequest{Name: "wire-read", Scope: "read", ExpiresAt: str(t0.AddDate(1, 0, 0).Format(time.RFC3339))}
	sent(t, w, byTime, nil)
	readKey := check(c.CreateKey(ctx, byTime))(rt)
	_, err = c.CreateKey(ctx, wire.CreateKeyRequest{Name: "both", Scope: "read", ExpiresDays: num(1), ExpiresAt: str("2030-01-31T12:00:00Z")})
	require.ErrorIs(t, err, client.ErrInvalid)
	rotate := wire.RotateKeyRequest{GraceSeconds: num(60)}
	sent(t, w, rotate, nil)
	rotated := check(c.RotateKey(ctx, evalKey.KeyID, rotate))(rt)
	check(c.GetKey(ctx, evalKey.KeyID))(rt)
	check(c.RevokeKey(ctx, readKey.KeyID))(rt)
	check(c.ListKeys(ctx))(rt)

	// Decisions, as the agent's key asks them.
	agent, err := client.New(s.srv.URL, client.WithAPIKey(rotated.Key), client.WithHTTPClient(&http.Client{Transport: rec}))
	require.NoError(t, err)
	ask := wire.EvaluateRequest{AgentRole: "loan_officer", AgentID: "wire-agent", UserID: "u-7", SourceID: "crm",
		SensitivityLevel: "medium", SessionID: "wire-session", TaskType: "kyc", Action: "read", Query: "income",
		PrincipalClaims: []string{"group:credit"}}
	sent(t, w, ask, nil)
	allowed := check(agent.Evaluate(ctx, ask))(rt)
	require.True(t, allowed.Allowed(), "%+v", allowed)
	ask.SourceID = "hr_records"
	denied := check(agent.EvaluateWithReceipt(ctx, ask))(rt)
	require.False(t, denied.Allowed(), "%+v", denied)
	require.NotEmpty(t, denied.Receipt, "a receipt asked for comes with the decision")
	parsed, err := checkpoint.ParseReceipt([]byte(denied.Receipt))
	require.NoError(t, err)
	require.Equal(t, denied.LeafIndex, parsed.Index)
	require.Empty(t, allowed.Receipt, "no receipt unless asked for")
	incl := check(c.InclusionProof(ctx, denied.Seq, 0))(rt)
	require.Equal(t, denied.LeafIndex, incl.Index)
	require.NotEmpty(t, incl.Hashes)
	cons := check(c.ConsistencyProof(ctx, 1, incl.TreeSize))(rt)
	require.NotEmpty(t, cons.Hashes)

	// The audit trail.
	check(c.SessionTrail(ctx, "wire-session"))(rt)
	check(c.Events(ctx, client.EventQuery{Limit: 2}))(rt)
	page := check(c.Events(ctx, client.EventQuery{EventFilter: client.EventFilter{Type: client.EventDecisionMade}}))(rt)
	require.Len(t, page.Events, 2)
	for _, e := range page.Events {
		m, err := e.DecisionMade()
		require.NoError(t, err)
		sameBytes(t, e.Payload, m, true)
		w.saw(reflect.ValueOf(m))
	}
	check(c.VerifyChain(ctx))(rt)

	// The key history is JSON Lines, written without HTML escaping.
	resp, err := rec.RoundTrip(withKey(mustRequest(t, http.MethodGet, s.srv.URL+"/v1/keys/history"), s.admin))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	lines := bufio.NewScanner(bytes.NewReader(rec.last()))
	for lines.Scan() {
		var f wire.KeyFact
		require.NoError(t, json.Unmarshal(lines.Bytes(), &f))
		sameBytes(t, lines.Bytes(), f, false)
		w.saw(reflect.ValueOf(f))
	}

	// Backups: name is read; out is read and refused.
	super, err := client.New(s.srv.URL, client.WithAPIKey(s.superadmin), client.WithHTTPClient(&http.Client{Transport: rec}))
	require.NoError(t, err)
	sent(t, w, wire.BackupRequest{Name: "wire-backup"}, nil)
	check(super.Backup(ctx, "wire-backup"))(rt)
	out := wire.BackupRequest{Name: "x", Out: str("/tmp/x")}
	body, err := json.Marshal(out)
	require.NoError(t, err)
	r := s.postJSON(t, "/v1/admin/backup", s.superadmin, string(body))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "out is read, then refused: %s", r.body)
	sent(t, w, out, nil)

	// Alerts: rules of every shape, one raised alert with every field, the
	// dead letters.
	spike := wire.AlertRule{RuleID: "spike", Kind: "denial_spike", Description: "denials per role",
		GroupBy: "role", Threshold: 50, Window: alerts.Duration(5 * time.Minute), DenialType: "policy"}
	rate := wire.AlertRule{RuleID: "rate", Kind: "denial_rate", GroupBy: "agent", Threshold: 40,
		Window: alerts.Duration(10 * time.Minute), MinDecisions: 50}
	expiry := wire.AlertRule{RuleID: "expiry", Kind: "key_expiring", Days: []int{14, 1}}
	for _, r := range []wire.AlertRule{spike, rate, expiry} {
		sent(t, w, r, nil)
		check(c.SetAlertRule(ctx, r))(rt)
	}
	check(c.ListAlertRules(ctx))(rt)
	require.NoError(t, c.DeleteAlertRule(ctx, "spike"))
	windowStart, windowEnd := t0, t0.Add(5*time.Minute)
	_, _, _, err = s.ledger.RaiseAlert(ctx, alerts.Raised{RuleID: "spike", Kind: "denial_spike", Subject: "role loan_officer",
		WindowStart: &windowStart, WindowEnd: &windowEnd, Figures: map[string]int64{"denials": 51}, Detail: "51 denials in 5m"})
	require.NoError(t, err)
	_, _, _, err = s.ledger.RaiseAlert(ctx, alerts.Raised{RuleID: "expiry", Kind: "key_expiring", Subject: "key " + evalKey.KeyID, Detail: "expires in 14 days"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { // the index follows the log
		list, err := c.ListAlerts(ctx, client.AlertFilter{})
		return err == nil && len(list.Alerts) == 2
	}, 5*time.Second, time.Millisecond)
	check(c.ListAlerts(ctx, client.AlertFilter{Kind: "denial_spike"}))(rt)
	check(c.ListAlerts(ctx, client.AlertFilter{Limit: 1}))(rt) // a next page
	check(c.ListDeadLetters(ctx))(rt)

	// The tables custos replay prints.
	state, err := s.index.ReplayAt(ctx, s.clock.Now())
	require.NoError(t, err)
	raw, err := json.Marshal(httpapi.TablesAt(state, s.clock.Now()))
	require.NoError(t, err)
	var tables wire.Tables
	require.NoError(t, json.Unmarshal(raw, &tables))
	sameBytes(t, raw, tables, true)
	w.saw(reflect.ValueOf(tables))

	// A broken chain's report, which a healthy server never sends: every
	// field of verify.Report set, copied, and read back.
	var report verify.Report
	fillEveryField(t, reflect.ValueOf(&report).Elem())
	want, err := json.Marshal(report)
	require.NoError(t, err)
	var got wire.VerifyReport
	require.NoError(t, json.Unmarshal(want, &got))
	sameBytes(t, want, got, true)
	sameBytes(t, want, httpapi.VerifyReport(report), true)
	w.saw(reflect.ValueOf(got))

	// Every exported type of package wire, and every field, was seen.
	for name, qualified := range wireTypes(t) {
		require.True(t, w.types[qualified], "wire.%s (%s) has no round-trip case in TestWireTypesRoundTrip", name, qualified)
	}
	for typ, seen := range w.fields {
		for i := range typ.NumField() {
			require.True(t, seen[i], "wire.%s.%s is never set in TestWireTypesRoundTrip", typ.Name(), typ.Field(i).Name)
		}
	}
}

// check is answer for a client call: check(c.GetKey(ctx, id))(rt).
func check[T any](v T, err error) func(*roundTrip) T {
	return func(rt *roundTrip) T {
		rt.t.Helper()
		return answer(rt.t, rt.w, rt.rec, v, err)
	}
}

type roundTrip struct {
	t   *testing.T
	w   *wireCoverage
	rec *lastBody
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	return req
}

func withKey(req *http.Request, key string) *http.Request {
	req.Header.Set("X-API-Key", key)
	return req
}

// fillEveryField sets every field of the struct v (recursively, through
// pointers) to a value that is not zero.
func fillEveryField(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.String:
			f.SetString("s" + strconv.Itoa(i))
		case reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint:
			f.SetUint(uint64(i + 1))
		case reflect.Int64, reflect.Int32, reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
			if f.Elem().Kind() == reflect.Struct {
				fillEveryField(t, f.Elem())
			} else if f.Elem().Kind() == reflect.Uint64 {
				f.Elem().SetUint(uint64(i + 1))
			} else {
				f.Elem().Set(reflect.ValueOf("p" + strconv.Itoa(i)).Convert(f.Type().Elem()))
			}
		default:
			t.Fatalf("fillEveryField: no value for %s %s", v.Type().Field(i).Name, f.Type())
		}
	}
}

// wireTypes lists the exported types declared in package wire, each with
// the "pkgpath.Name" of the type it denotes (an alias denotes another
// package's type).
func wireTypes(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("wire")
	require.NoError(t, err)
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join("wire", e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		imports := map[string]string{}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			imports[name] = path
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				out[ts.Name.Name] = wirePkg + "." + ts.Name.Name
				if ts.Assign.IsValid() {
					sel, ok := ts.Type.(*ast.SelectorExpr)
					require.True(t, ok, "alias wire.%s: want pkg.Type", ts.Name.Name)
					out[ts.Name.Name] = imports[sel.X.(*ast.Ident).Name] + "." + sel.Sel.Name
				}
			}
		}
	}
	require.Contains(t, out, "Decision", "the parse found package wire")
	return out
}
