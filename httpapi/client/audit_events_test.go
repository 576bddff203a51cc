package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/verify"
)

// auditStack is a real stack (newServer) with a policy, an approved agent
// and its evaluate key, and decisions in two sessions.
type auditStack struct {
	*server
	admin *client.Client
	// agentKeyID is the key that made every decision.
	agentKeyID string
	// allow and deny count the decisions made.
	allow, deny int
}

// newAuditStack makes allows ALLOW decisions in session "s-allow" (source
// crm) and denies DENY decisions in session "s-deny" (source hr_records),
// interleaved.
func newAuditStack(t *testing.T, allows, denies int) *auditStack {
	t.Helper()
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
	evaluate := func(session, source, want string) {
		d, err := agent.Evaluate(ctx, wire.EvaluateRequest{AgentRole: "loan_officer", AgentID: "loan-agent",
			UserID: "u-1", SourceID: source, SensitivityLevel: "low", SessionID: session})
		require.NoError(t, err)
		require.Equal(t, want, d.Decision, "%+v", d)
	}
	for i := range max(allows, denies) {
		if i < allows {
			evaluate("s-allow", "crm", client.Allow)
		}
		if i < denies {
			evaluate("s-deny", "hr_records", client.Deny)
		}
	}
	return &auditStack{server: s, admin: admin, agentKeyID: k.KeyID, allow: allows, deny: denies}
}

// all returns every event, one page.
func (a *auditStack) all(t *testing.T) []wire.Event {
	t.Helper()
	page, err := a.admin.Events(context.Background(), client.EventQuery{Limit: client.MaxEventLimit})
	require.NoError(t, err)
	require.Nil(t, page.NextAfterSeq)
	return page.Events
}

func seqs(events []wire.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func TestEventsPagesWithNextAfterSeq(t *testing.T) {
	t.Parallel()
	a := newAuditStack(t, 4, 3)
	ctx := context.Background()
	every := a.all(t)
	require.Greater(t, len(every), 10)
	for i, e := range every {
		assert.Equal(t, uint64(i+1), e.Seq, "the whole chain, in order")
		assert.Len(t, e.Hash, 64)
		assert.Len(t, e.PrevHash, 64)
		assert.Equal(t, uint16(1), e.HashVersion)
		assert.NotEmpty(t, e.ID)
		assert.False(t, e.Time.IsZero())
		assert.True(t, json.Valid(e.Payload), "seq %d", e.Seq)
		if i > 0 {
			assert.Equal(t, every[i-1].Hash, e.PrevHash, "seq %d links", e.Seq)
		}
	}

	// Page by hand, 3 at a time: every page but the last is full and
	// points at its own last seq.
	var got []wire.Event
	q := client.EventQuery{Limit: 3}
	pages := 0
	for {
		page, err := a.admin.Events(ctx, q)
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, pages, len(every), "paging never ended")
		got = append(got, page.Events...)
		if page.NextAfterSeq == nil {
			break
		}
		require.Len(t, page.Events, 3)
		assert.Equal(t, page.Events[2].Seq, *page.NextAfterSeq)
		q.AfterSeq = *page.NextAfterSeq
	}
	assert.Equal(t, every, got)
	assert.Equal(t, (len(every)+2)/3, pages)

	// AllEvents follows the cursor itself, with any page size.
	for _, limit := range []int{0, 1, 2, 5, len(every), client.MaxEventLimit} {
		var all []wire.Event
		require.NoError(t, a.admin.AllEvents(ctx, client.EventQuery{Limit: limit}, func(e wire.Event) error {
			all = append(all, e)
			return nil
		}))
		assert.Equal(t, every, all, "limit %d", limit)
	}
	var rest []wire.Event
	require.NoError(t, a.admin.AllEvents(ctx, client.EventQuery{AfterSeq: 5, Limit: 2}, func(e wire.Event) error {
		rest = append(rest, e)
		return nil
	}))
	assert.Equal(t, every[5:], rest, "AllEvents starts after AfterSeq")

	// The default page is the server's (100); nothing after the head is an
	// empty last page.
	page, err := a.admin.Events(ctx, client.EventQuery{})
	require.NoError(t, err)
	assert.Equal(t, every, page.Events)
	page, err = a.admin.Events(ctx, client.EventQuery{AfterSeq: every[len(every)-1].Seq})
	require.NoError(t, err)
	assert.NotNil(t, page.Events)
	assert.Empty(t, page.Events)
	assert.Nil(t, page.NextAfterSeq)

	// fn's error stops the walk and comes back as it is.
	errEnough := errors.New("enough")
	calls := 0
	err = a.admin.AllEvents(ctx, client.EventQuery{Limit: 2}, func(wire.Event) error {
		calls++
		if calls == 3 {
			return errEnough
		}
		return nil
	})
	assert.Same(t, errEnough, err)
	assert.Equal(t, 3, calls)
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	a := newAuditStack(t, 3, 2)
	ctx := context.Background()
	every := a.all(t)

	// want returns the seqs of every event that keep accepts.
	want := func(keep func(wire.Event, wire.DecisionMade, bool) bool) []uint64 {
		var out []uint64
		for _, e := range every {
			m, err := e.DecisionMade()
			if keep(e, m, err == nil) {
				out = append(out, e.Seq)
			}
		}
		return out
	}
	query := func(f client.EventFilter) []uint64 {
		t.Helper()
		var got []wire.Event
		require.NoError(t, a.admin.AllEvents(ctx, client.EventQuery{EventFilter: f, Limit: 2}, func(e wire.Event) error {
			got = append(got, e)
			return nil
		}))
		return seqs(got)
	}
	first, last := every[2].Time, every[len(every)-3].Time
	tests := []struct {
		name   string
		filter client.EventFilter
		keep   func(e wire.Event, m wire.DecisionMade, isDecision bool) bool
		count  int // expected matches; -1: not checked
	}{
		{"type", client.EventFilter{Type: client.EventDecisionMade},
			func(_ wire.Event, _ wire.DecisionMade, d bool) bool { return d }, 5},
		{"key.created", client.EventFilter{Type: "key.created"},
			func(e wire.Event, _ wire.DecisionMade, _ bool) bool { return e.Type == "key.created" }, 2},
		{"deny", client.EventFilter{Decision: client.Deny},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool { return d && m.Decision == client.Deny }, 2},
		{"allow in session", client.EventFilter{Decision: client.Allow, SessionID: "s-allow"},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool { return d && m.Decision == client.Allow }, 3},
		{"session", client.EventFilter{SessionID: "s-deny"},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool { return d && m.Request.SessionID == "s-deny" }, 2},
		{"source", client.EventFilter{SourceID: "crm"},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool { return d && m.Request.SourceID == "crm" }, 3},
		{"agent and role", client.EventFilter{Type: client.EventDecisionMade, AgentID: "loan-agent", AgentRole: "loan_officer"},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool {
				return d && m.Request.AgentID == "loan-agent"
			}, 5},
		{"decisions of a key", client.EventFilter{Type: client.EventDecisionMade, KeyID: a.agentKeyID},
			func(_ wire.Event, m wire.DecisionMade, d bool) bool { return d && m.KeyID == a.agentKeyID }, 5},
		{"no match", client.EventFilter{SessionID: "s-none"},
			func(wire.Event, wire.DecisionMade, bool) bool { return false }, 0},
		{"from and to, inclusive", client.EventFilter{From: first, To: last},
			func(e wire.Event, _ wire.DecisionMade, _ bool) bool {
				return !e.Time.Before(first) && !e.Time.After(last)
			}, -1},
		{"from and deny", client.EventFilter{From: first, Decision: client.Deny},
			func(e wire.Event, m wire.DecisionMade, d bool) bool {
				return d && m.Decision == client.Deny && !e.Time.Before(first)
			}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expected := want(tc.keep)
			if tc.count >= 0 {
				require.Len(t, expected, tc.count, "test data")
			}
			got := query(tc.filter)
			if len(expected) == 0 {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, expected, got)
			}
		})
	}

	// The reason of a decision is in its typed payload.
	page, err := a.admin.Events(ctx, client.EventQuery{EventFilter: client.EventFilter{Decision: client.Deny}, Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.NotNil(t, page.NextAfterSeq)
	m, err := page.Events[0].DecisionMade()
	require.NoError(t, err)
	assert.Equal(t, client.Deny, m.Decision)
	assert.Equal(t, "hr_records", m.Request.SourceID)
	assert.NotEmpty(t, m.Reason)
	assert.Equal(t, a.agentKeyID, m.KeyID)
	_, err = every[0].DecisionMade()
	assert.ErrorIs(t, err, wire.ErrNotDecision)
}

func TestEventsErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	c := s.client(t, s.admin)
	for name, tc := range map[string]struct {
		q        client.EventQuery
		sentinel error
		status   int
	}{
		"limit too large": {client.EventQuery{Limit: client.MaxEventLimit + 1}, client.ErrInvalid, http.StatusUnprocessableEntity},
		"limit negative":  {client.EventQuery{Limit: -1}, client.ErrInvalid, http.StatusUnprocessableEntity},
		"decision":        {client.EventQuery{EventFilter: client.EventFilter{Decision: "MAYBE"}}, client.ErrMalformed, http.StatusBadRequest},
		"type":            {client.EventQuery{EventFilter: client.EventFilter{Type: "nope"}}, client.ErrMalformed, http.StatusBadRequest},
		"source escape":   {client.EventQuery{EventFilter: client.EventFilter{SourceID: "crm\x1b[31m"}}, client.ErrMalformed, http.StatusBadRequest},
	} {
		_, err := c.Events(ctx, tc.q)
		detail := requireAPIError(t, err, tc.sentinel, tc.status)
		assert.Contains(t, detail, "Invalid request", name)
		err = c.AllEvents(ctx, tc.q, func(wire.Event) error { t.Fatal("no event expected"); return nil })
		requireAPIError(t, err, tc.sentinel, tc.status)
	}
	_, err := s.client(t, "").Events(ctx, client.EventQuery{})
	requireAPIError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
}

// chunkWriter records the size of every write.
type chunkWriter struct {
	buf    bytes.Buffer
	chunks []int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.chunks = append(w.chunks, len(p))
	return w.buf.Write(p)
}

func TestExportStreams(t *testing.T) {
	t.Parallel()
	a := newAuditStack(t, 60, 60) // well over one 32 KiB copy buffer of JSONL
	ctx := context.Background()
	every := a.all(t)
	head := every[len(every)-1]

	// The whole chain, written in bounded chunks as it arrives, verifies
	// offline and ends at the live head.
	var w chunkWriter
	n, err := a.admin.Export(ctx, client.ExportQuery{}, &w)
	require.NoError(t, err)
	assert.Equal(t, int64(w.buf.Len()), n)
	assert.Greater(t, len(w.chunks), 1, "streamed, not one write")
	for _, c := range w.chunks {
		assert.LessOrEqual(t, c, 32<<10)
	}
	report, err := verify.Export(ctx, bytes.NewReader(w.buf.Bytes()))
	require.NoError(t, err)
	assert.True(t, report.Valid, "%+v", report.Detail)
	assert.Equal(t, head.Seq, report.Total)
	assert.Equal(t, head.Seq, report.HeadSeq)
	assert.Equal(t, head.Hash, report.HeadHash)

	// A range verifies from its anchor.
	var ranged bytes.Buffer
	_, err = a.admin.Export(ctx, client.ExportQuery{Format: client.ExportJSONL, FromSeq: 3, ToSeq: 7}, &ranged)
	require.NoError(t, err)
	report, err = verify.Export(ctx, &ranged)
	require.NoError(t, err)
	assert.True(t, report.Valid)
	assert.Equal(t, uint64(5), report.Total)
	assert.Equal(t, uint64(3), report.AnchorSeq)
	assert.Equal(t, every[1].Hash, report.AnchorPrevHash)

	// Filters apply to exports too: one JSONL line per denial.
	var denials bytes.Buffer
	_, err = a.admin.Export(ctx, client.ExportQuery{EventFilter: client.EventFilter{Decision: client.Deny}}, &denials)
	require.NoError(t, err)
	sc := bufio.NewScanner(&denials)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var line struct {
			Type    string `json:"type"`
			Payload struct {
				Decision string `json:"decision"`
			} `json:"payload"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		assert.Equal(t, client.EventDecisionMade, line.Type)
		assert.Equal(t, client.Deny, line.Payload.Decision)
		lines++
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, a.deny, lines)

	// CSV: a header and one row per matching event.
	var sheet bytes.Buffer
	_, err = a.admin.Export(ctx, client.ExportQuery{Format: client.ExportCSV,
		EventFilter: client.EventFilter{SessionID: "s-allow"}}, &sheet)
	require.NoError(t, err)
	rows, err := csv.NewReader(&sheet).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+a.allow)
	assert.Equal(t, "seq", rows[0][0])
	assert.Equal(t, "ALLOW", rows[1][5])

	// An error answer writes nothing.
	var none bytes.Buffer
	n, err = a.admin.Export(ctx, client.ExportQuery{Format: "xml"}, &none)
	assert.Contains(t, requireAPIError(t, err, client.ErrMalformed, http.StatusBadRequest), "format")
	assert.Zero(t, n)
	assert.Zero(t, none.Len())
	_, err = a.admin.Export(ctx, client.ExportQuery{FromSeq: 5, ToSeq: 4}, &none)
	requireAPIError(t, err, client.ErrInvalid, http.StatusUnprocessableEntity)
	_, err = a.client(t, "cst_garbage").Export(ctx, client.ExportQuery{}, &none)
	requireAPIError(t, err, client.ErrForbidden, http.StatusForbidden)
	assert.Zero(t, none.Len())

	// A failing writer stops the download with its error.
	errFull := errors.New("disk full")
	_, err = a.admin.Export(ctx, client.ExportQuery{}, failingWriter{errFull})
	assert.ErrorIs(t, err, errFull)
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// A stream the server aborts after the status line is an error, never a
// short success: the caller must not keep a truncated export.
func TestExportBrokenStreamIsAnError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/audit/export", r.URL.Path)
		assert.Equal(t, "csv", r.URL.Query().Get("format"))
		assert.Equal(t, "2", r.URL.Query().Get("from_seq"))
		assert.Equal(t, "DENY", r.URL.Query().Get("decision"))
		assert.Equal(t, "2030-01-31T12:00:00.5Z", r.URL.Query().Get("from"))
		assert.Equal(t, "k", r.Header.Get("X-API-Key"))
		w.Header().Set("Content-Type", "text/csv")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, strings.Repeat("row\n", 100))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithAPIKey("k"))
	require.NoError(t, err)
	from, err := time.Parse(time.RFC3339Nano, "2030-01-31T12:00:00.5Z")
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := c.Export(context.Background(), client.ExportQuery{Format: client.ExportCSV, FromSeq: 2,
		EventFilter: client.EventFilter{Decision: client.Deny, From: from}}, &buf)
	require.Error(t, err)
	var apiErr *client.APIError
	assert.False(t, errors.As(err, &apiErr), "a broken stream is a transport error: %v", err)
	assert.Equal(t, int64(buf.Len()), n)
	assert.Contains(t, err.Error(), fmt.Sprintf("after %d bytes", n))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Export(ctx, client.ExportQuery{}, &buf)
	assert.ErrorIs(t, err, context.Canceled)
}
