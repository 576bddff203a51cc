package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/verify"
)

// seqsOf pages through GET /v1/audit/events with query q and returns every
// seq, checking the cursor contract on the way.
func seqsOf(t *testing.T, s *stack, q url.Values, limit int) []float64 {
	t.Helper()
	var out []float64
	after := ""
	for range 1000 {
		p := url.Values{}
		for k, v := range q {
			p[k] = v
		}
		p.Set("limit", fmt.Sprint(limit))
		if after != "" {
			p.Set("after_seq", after)
		}
		r := s.get(t, "/v1/audit/events?"+p.Encode(), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		m := r.object(t)
		events := m["events"].([]any)
		assert.LessOrEqual(t, len(events), limit)
		for _, e := range events {
			ev := e.(map[string]any)
			for _, field := range []string{"seq", "id", "time", "type", "actor", "payload", "prev_hash", "hash"} {
				assert.Contains(t, ev, field)
			}
			out = append(out, ev["seq"].(float64))
		}
		if m["next_after_seq"] == nil {
			return out
		}
		after = fmt.Sprint(m["next_after_seq"])
	}
	t.Fatal("pagination never ended")
	return nil
}

func TestAuditEventsQueryFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	for i := range 7 {
		e.evaluate(t, e.agentKey, evalBody(fmt.Sprintf("audit-session-%d", i%2), []string{"crm", "hr_records"}[i%2], "low", ""))
	}
	other := `{"agent_role":"loan_officer","agent_id":"a-1","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"audit-other"}`
	e.evaluate(t, e.admin, other)

	cases := []struct {
		name  string
		query url.Values
		want  int
	}{
		{"one session", url.Values{"session_id": {"audit-session-0"}}, 4},
		{"by agent", url.Values{"agent_id": {"loan-agent"}, "type": {"decision.made"}}, 7},
		{"denials of one source", url.Values{"decision": {"DENY"}, "source_id": {"hr_records"}}, 3},
		{"allowed", url.Values{"decision": {"ALLOW"}, "agent_role": {"loan_officer"}}, 4},
		{"by key", url.Values{"key_id": {e.adminID}, "type": {"decision.made"}}, 1},
		{"agents registered", url.Values{"type": {"agent.registered"}}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The same answer whether the index is behind (log tail) or
			// caught up (index postings), and whatever the page size.
			before := seqsOf(t, e.stack, tc.query, 2)
			_, err := e.index.CatchUp(context.Background())
			require.NoError(t, err)
			after := seqsOf(t, e.stack, tc.query, 1000)
			assert.Len(t, before, tc.want)
			assert.Equal(t, before, after)
			assert.IsIncreasing(t, after)
		})
	}

	all := seqsOf(t, e.stack, url.Values{}, 1000)
	head := e.head(t)
	assert.Len(t, all, int(head), "no filter: every event")
	mid := e.get(t, "/v1/audit/events?after_seq=3&limit=2", e.admin).object(t)
	assert.EqualValues(t, 4, mid["events"].([]any)[0].(map[string]any)["seq"])
	assert.EqualValues(t, 5, mid["next_after_seq"])

	// Time bounds are inclusive and use the record's time.
	e.clock.Advance(time.Hour)
	mark := e.clock.Now()
	e.evaluate(t, e.agentKey, evalBody("audit-late", "crm", "low", ""))
	late := seqsOf(t, e.stack, url.Values{"from": {mark.Format(time.RFC3339Nano)}, "type": {"decision.made"}}, 10)
	assert.Len(t, late, 1)
	early := seqsOf(t, e.stack, url.Values{"to": {mark.Add(-time.Second).Format(time.RFC3339Nano)}, "session_id": {"audit-session-1"}}, 10)
	assert.Len(t, early, 3)
}

func TestAuditEventsBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cases := []struct {
		query  string
		status int
		want   string
	}{
		{"colour=blue", 400, `"colour"`},
		{"from=yesterday", 422, "from must be an RFC 3339 time"},
		{"to=2030-13-01T00:00:00Z", 422, "to must be an RFC 3339 time"},
		{"limit=0", 422, "limit must be a whole number from 1 to 1000"},
		{"limit=1001", 422, "limit must be a whole number from 1 to 1000"},
		{"after_seq=-1", 422, "after_seq"},
		{"decision=MAYBE", 400, `query parameter decision must be one of ALLOW, DENY, got "MAYBE"`},
		{"decision=allow", 400, "query parameter decision must be one of ALLOW, DENY"},
		{"type=nope", 400, `query parameter type must be one of key.created, key.rotated`},
		{"type=decision.made&type=key.created", 400, `Query parameter "type" is given more than once.`},
		{"limit=1&limit=2", 400, `Query parameter "limit" is given more than once.`},
		{"limit=1&limit=1", 400, `Query parameter "limit" is given more than once.`},
		{"source_id=crm%1B%5B31m", 400, "query parameter source_id must not contain control characters (U+001B at byte 3)"},
		{"agent_id=a%E2%80%AEb", 400, "query parameter agent_id must not contain bidirectional controls (U+202E at byte 1)"},
		{"session_id=%FF", 400, "query parameter session_id must be valid UTF-8 (byte 0xFF at byte 0)"},
		{"type=", 200, ""},
		{"from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", 422, "to must not be before from"},
	}
	for _, tc := range cases {
		r := s.get(t, "/v1/audit/events?"+tc.query, s.admin)
		require.Equal(t, tc.status, r.status, "%s: %s", tc.query, r.body)
		if tc.want != "" {
			assert.Contains(t, r.detail(t), tc.want, tc.query)
		}
	}
	// Every enum-valued and every repeated parameter of every route.
	for _, tc := range []struct{ path, want string }{
		{"/v1/audit/export?format=xml", "query parameter format must be one of jsonl, csv"},
		{"/v1/audit/export?type=nope", "query parameter type must be one of"},
		{"/v1/audit/export?decision=maybe", "query parameter decision must be one of"},
		{"/v1/audit/export?from_seq=1&from_seq=2", `"from_seq" is given more than once`},
		{"/v1/keys/history?format=pdf", "query parameter format must be one of jsonl, csv"},
		{"/v1/keys/history?format=csv&format=jsonl", `"format" is given more than once`},
		{"/v1/agents?status=bogus", "query parameter status must be one of draft, approved, suspended, retired"},
		{"/v1/agents?status=draft&status=approved", `"status" is given more than once`},
		{"/v1/agents?owner=a&owner=b", `"owner" is given more than once`},
		{"/v1/keys?as_of=2030-01-01T00:00:00Z&as_of=2031-01-01T00:00:00Z", `"as_of" is given more than once`},
		{"/v1/policies?as_of=x%00", "query parameter as_of must not contain control characters"},
	} {
		r := s.get(t, tc.path, s.admin)
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", tc.path, r.body)
		assert.Contains(t, r.detail(t), tc.want, tc.path)
	}
	r := s.get(t, "/v1/agents?status=approved", s.admin)
	assert.Equal(t, http.StatusOK, r.status)
	r = s.get(t, "/v1/audit/verify?full=1", s.admin)
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = s.get(t, "/v1/keys?as_of=0001-01-01T01:00:00%2B01:00", s.admin)
	assert.Equal(t, http.StatusUnprocessableEntity, r.status, "the zero instant is refused, not read as no limit")
	r = s.get(t, "/v1/keys?as_of=last-week", s.admin)
	assert.Equal(t, http.StatusUnprocessableEntity, r.status)
	assert.Contains(t, r.detail(t), "as_of must be an RFC 3339 time")
}

func TestAuditExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	for i := range 5 {
		e.evaluate(t, e.agentKey, evalBody(fmt.Sprintf("export-%d", i), "crm", "low", ""))
	}
	r := e.get(t, "/v1/audit/export?format=jsonl", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	report, err := verify.Export(context.Background(), bytes.NewReader(r.body))
	require.NoError(t, err)
	assert.True(t, report.Valid, "%+v", report.Detail)
	assert.Equal(t, e.head(t), report.Total)

	// A range from the middle verifies from its anchor.
	r = e.get(t, "/v1/audit/export?format=jsonl&from_seq=3&to_seq=6", e.admin)
	report, err = verify.Export(context.Background(), bytes.NewReader(r.body))
	require.NoError(t, err)
	assert.True(t, report.Valid)
	assert.Equal(t, uint64(4), report.Total)
	assert.Equal(t, uint64(3), report.AnchorSeq)

	// One changed character in a line is caught at that event.
	lines := bytes.Split(bytes.TrimSpace(e.get(t, "/v1/audit/export", e.admin).body), []byte("\n"))
	var victim map[string]any
	require.NoError(t, json.Unmarshal(lines[2], &victim))
	victim["actor"] = "key_forged"
	lines[2], _ = json.Marshal(victim)
	report, err = verify.Export(context.Background(), bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	require.NoError(t, err)
	assert.False(t, report.Valid)
	require.NotNil(t, report.BrokenAt)
	assert.Equal(t, victim["id"], *report.BrokenAt)

	// CSV: a header and one row per matching event.
	r = e.get(t, "/v1/audit/export?format=csv&type=decision.made", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 6)
	assert.Equal(t, "decision", rows[0][5])
	assert.Equal(t, "ALLOW", rows[1][5])
	assert.Equal(t, "crm", rows[1][12])
}

func TestPointInTimeTables(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	at := func() string { return s.clock.Now().Format(time.RFC3339Nano) }
	tick := func() { s.clock.Advance(time.Minute) }
	list := func(path, instant string) []any {
		r := s.get(t, path+"?as_of="+url.QueryEscape(instant), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var v []any
		require.NoError(t, json.Unmarshal(r.body, &v))
		return v
	}
	beforeGenesis := s.clock.Now().Add(-24 * time.Hour).Format(time.RFC3339Nano)

	tick()
	t1 := at() // bootstrap key + agents exist
	tick()
	reader := s.mustCreate(t, `{"name":"reader","scope":"read","expires_days":1}`)
	tick()
	t2 := at()
	tick()
	r := s.postJSON(t, "/v1/keys/"+reader["key_id"].(string)+"/rotate", s.admin, `{"grace_seconds":120}`)
	require.Equal(t, http.StatusCreated, r.status)
	tick()
	t3 := at() // inside grace
	tick()
	tick()
	t4 := at() // grace over
	tick()
	r = s.postJSON(t, "/v1/policies", s.admin, `{"name":"p","agent_role":"loan_officer","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, r.status)
	pid := r.object(t)["policy_id"].(string)
	tick()
	t5 := at()
	tick()
	r = s.do(t, request{method: http.MethodPut, path: "/v1/policies/" + pid, key: s.admin, body: `{"name":"p","agent_role":"loan_officer","allowed_sources":["crm","erp"]}`})
	require.Equal(t, http.StatusOK, r.status)
	tick()
	t6 := at()
	tick()
	r = s.do(t, request{method: http.MethodPatch, path: "/v1/agents/a-1/status", key: s.admin, body: `{"status":"approved"}`})
	require.Equal(t, http.StatusOK, r.status)
	tick()
	t7 := at()
	s.clock.Advance(48 * time.Hour)
	t8 := at() // the reader's successor expired

	assert.Empty(t, list("/v1/keys", beforeGenesis))
	assert.Empty(t, list("/v1/policies", beforeGenesis))
	assert.Empty(t, list("/v1/agents", beforeGenesis))
	assert.Len(t, list("/v1/keys", t1), 1)
	assert.Len(t, list("/v1/keys", t2), 2)

	keyAt := func(instant, id string) map[string]any {
		r := s.get(t, "/v1/keys/"+id+"?as_of="+url.QueryEscape(instant), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		return r.object(t)
	}
	assert.Equal(t, true, keyAt(t2, reader["key_id"].(string))["is_active"])
	assert.Nil(t, keyAt(t2, reader["key_id"].(string))["rotated_to"])
	assert.Equal(t, true, keyAt(t3, reader["key_id"].(string))["is_active"], "inside grace at t3")
	assert.NotNil(t, keyAt(t3, reader["key_id"].(string))["rotated_to"])
	assert.Equal(t, false, keyAt(t4, reader["key_id"].(string))["is_active"], "grace over at t4")
	assert.Equal(t, http.StatusNotFound, s.get(t, "/v1/keys/"+reader["key_id"].(string)+"?as_of="+url.QueryEscape(t1), s.admin).status)

	assert.Empty(t, list("/v1/policies", t4))
	policyAt := func(instant string) map[string]any {
		r := s.get(t, "/v1/policies/"+pid+"?as_of="+url.QueryEscape(instant), s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		return r.object(t)
	}
	assert.EqualValues(t, 1, policyAt(t5)["version"])
	assert.EqualValues(t, 2, policyAt(t6)["version"])
	assert.Equal(t, []any{"crm", "erp"}, policyAt(t6)["allowed_sources"])

	agentAt := func(instant string) string {
		r := s.get(t, "/v1/agents/a-1?as_of="+url.QueryEscape(instant), s.admin)
		require.Equal(t, http.StatusOK, r.status)
		return r.object(t)["status"].(string)
	}
	assert.Equal(t, "draft", agentAt(t6))
	assert.Equal(t, "approved", agentAt(t7))
	assert.Len(t, list("/v1/agents", t7), 2)

	live := 0
	for _, k := range list("/v1/keys", t8) {
		if k.(map[string]any)["is_active"] == true {
			live++
		}
	}
	assert.Equal(t, 1, live, "only the bootstrap key lives at t8")

	// As of now equals live state. Uses are recorded without waiting for
	// their fsync; a synchronous write behind them makes them durable, and
	// point-in-time reads only durable events.
	s.createKey(t, "sync", "read", 0)
	now := s.clock.Now().Format(time.RFC3339Nano)
	liveKeys := s.get(t, "/v1/keys", s.admin)
	assert.JSONEq(t, string(liveKeys.body), string(s.get(t, "/v1/keys?as_of="+url.QueryEscape(now), s.admin).body))
}

func TestKeyHistory(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	k := s.mustCreate(t, `{"name":"short","scope":"read","expires_days":1}`)
	require.True(t, works(t, s, k["key"].(string)))
	r := s.postJSON(t, "/v1/keys/"+k["key_id"].(string)+"/rotate", s.admin, ``)
	require.Equal(t, http.StatusCreated, r.status)
	next := r.object(t)
	s.clock.Advance(2 * 24 * time.Hour) // the successor expires
	gone := s.mustCreate(t, `{"name":"gone","scope":"read"}`)
	require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+gone["key_id"].(string), s.admin).status)

	r = s.get(t, "/v1/keys/history", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	var facts []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var f map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &f))
		facts = append(facts, f)
	}
	seen := map[string]bool{}
	for _, f := range facts {
		seen[fmt.Sprint(f["key_id"], "/", f["fact"])] = true
		assert.NotEmpty(t, f["actor"])
	}
	for _, want := range []string{
		k["key_id"].(string) + "/created", k["key_id"].(string) + "/used", k["key_id"].(string) + "/rotated",
		next["key_id"].(string) + "/created", next["key_id"].(string) + "/expired",
		gone["key_id"].(string) + "/created", gone["key_id"].(string) + "/revoked",
	} {
		assert.True(t, seen[want], "history has %s", want)
	}
	assert.False(t, seen[k["key_id"].(string)+"/expired"], "a key rotated away before its expiry did not expire")

	r = s.get(t, "/v1/keys/history?format=csv", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	assert.True(t, strings.HasPrefix(string(r.body), "time,fact,key_id,name,scope,actor"))
}
