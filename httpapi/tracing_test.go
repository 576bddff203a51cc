package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTracesLinkRequestsToTheirCommit runs evaluations through a real stack
// with an in-memory exporter: each request is an otelhttp server span named
// by its route, a child of the caller's trace context when it sent one,
// with the decision attributes and nothing about the caller or the query;
// and the group commit that carried its record is a span, with its fsync,
// that links back to it.
func TestTracesLinkRequestsToTheirCommit(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	e := newEvalStack(t, withTracing(tp))
	keyID := e.mustCreate(t, `{"name":"reader","scope":"read"}`)["key_id"].(string)
	exp.Reset()

	// The DENY comes from a caller that is itself traced.
	callerTrace, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	callerSpan, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	traceparent := map[string]string{"traceparent": "00-" + callerTrace.String() + "-" + callerSpan.String() + "-01"}

	allow := e.evaluate(t, e.agentKey, evalBody("s-trace", "crm", "low", "loan_review"))
	require.Equal(t, http.StatusOK, allow.status, "%s", allow.body)
	deny := e.do(t, request{method: http.MethodPost, path: "/v1/context/evaluate", key: e.agentKey,
		body: evalBody("s-trace", "hr_records", "low", "loan_review"), header: traceparent})
	require.Equal(t, http.StatusOK, deny.status, "%s", deny.body)
	r := e.do(t, request{method: http.MethodGet, path: "/v1/keys/" + keyID, key: e.admin})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	// A path no route matches, with a key id in it.
	r = e.do(t, request{method: http.MethodGet, path: "/v1/nowhere/" + keyID, key: e.admin})
	require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)

	const evalRoute = "POST /v1/context/evaluate"
	var spans tracetest.SpanStubs
	require.Eventually(t, func() bool { // the server span ends just after the answer
		spans = exp.GetSpans()
		n := 0
		for _, s := range spans {
			if s.SpanKind == trace.SpanKindServer {
				n++
			}
		}
		return n == 4
	}, 5*time.Second, 5*time.Millisecond)

	var evals []tracetest.SpanStub
	commits := map[trace.SpanID]tracetest.SpanStub{}
	linkedFrom := map[trace.SpanID][]trace.SpanID{} // request span -> commit spans
	notFound := 0
	for _, s := range spans {
		switch s.Name {
		case evalRoute:
			evals = append(evals, s)
			assert.Equal(t, trace.SpanKindServer, s.SpanKind)
			assert.Equal(t, otelhttp.ScopeName, s.InstrumentationScope.Name, "the request span is otelhttp's")
		case "eventstore commit":
			commits[s.SpanContext.SpanID()] = s
			for _, l := range s.Links {
				id := l.SpanContext.SpanID()
				linkedFrom[id] = append(linkedFrom[id], s.SpanContext.SpanID())
			}
		case "GET /v1/keys/:key_id":
			attrs := attribute.NewSet(s.Attributes...)
			path, _ := attrs.Value("url.path")
			assert.Equal(t, "/v1/keys/:key_id", path.AsString(), "the raw path (a key id) is not exported")
		}
		if s.SpanKind == trace.SpanKindServer {
			attrs := attribute.NewSet(s.Attributes...)
			status, _ := attrs.Value("http.response.status_code")
			if status.AsInt64() == http.StatusNotFound {
				notFound++ // its key id is looked for below, with the others
			}
		}
	}
	assert.Equal(t, 1, notFound, "the unrouted request has its span")
	require.Len(t, evals, 2)
	assert.False(t, evals[0].Parent.IsValid(), "a request without traceparent starts a trace")
	assert.Equal(t, callerTrace, evals[1].SpanContext.TraceID(), "the caller's trace goes on")
	assert.Equal(t, callerSpan, evals[1].Parent.SpanID())
	assert.True(t, evals[1].Parent.IsRemote())
	for i, answer := range []response{allow, deny} {
		body := answer.object(t)
		attrs := attribute.NewSet(evals[i].Attributes...)
		get := func(k string) string { v, _ := attrs.Value(attribute.Key(k)); return v.Emit() }
		str := func(k string) string { v, _ := body[k].(string); return v }
		assert.Equal(t, []string{"ALLOW", "DENY"}[i], get("custos.decision"))
		for _, k := range []string{"policy_name", "policy_id", "denial_type", "policy_resolution"} {
			if str(k) == "" { // an empty one is left out
				assert.False(t, attrs.HasValue(attribute.Key("custos."+k)), "custos.%s", k)
				continue
			}
			assert.Equal(t, str(k), get("custos."+k), "custos.%s", k)
		}
		if i == 0 {
			assert.False(t, attrs.HasValue("custos.denial_type"), "an ALLOW has no denial type")
		} else {
			assert.Equal(t, "policy", get("custos.denial_type"))
		}
		assert.Equal(t, "lending-policy", get("custos.policy_name"))
		assert.Equal(t, e.policyID, get("custos.policy_id"))
		assert.Equal(t, "/v1/context/evaluate", get("http.route"))
		assert.Equal(t, "200", get("http.response.status_code"))

		// The commit that made this decision durable: linked from the
		// request, its seqs covering the answer's.
		seq := int64(body["seq"].(float64))
		var commit *tracetest.SpanStub
		for _, id := range linkedFrom[evals[i].SpanContext.SpanID()] {
			c := commits[id]
			a := attribute.NewSet(c.Attributes...)
			first, _ := a.Value("custos.commit.first_seq")
			last, _ := a.Value("custos.commit.last_seq")
			if first.AsInt64() <= seq && seq <= last.AsInt64() {
				commit = &c
			}
		}
		require.NotNil(t, commit, "the commit span carrying request %d (seq %d) links to it", i, seq)
		assert.False(t, commit.EndTime.After(evals[i].EndTime), "the answer waits for the commit")
		var fsync *tracetest.SpanStub
		for j := range spans {
			if spans[j].Name == "fsync" && spans[j].Parent.SpanID() == commit.SpanContext.SpanID() {
				fsync = &spans[j]
			}
		}
		require.NotNil(t, fsync, "the commit span has an fsync child")
		assert.Positive(t, fsync.EndTime.Sub(fsync.StartTime))
	}

	// Nothing that identifies the caller or the question leaves the process.
	forbidden := []string{e.agentKey, e.agentKey[:12], e.admin, keyID, "u-7", "income of applicant 42", "loan-agent"}
	for _, s := range spans {
		for _, kv := range append(s.Attributes, s.Resource.Attributes()...) {
			for _, f := range forbidden {
				assert.NotContains(t, kv.Value.Emit(), f, "span %q attribute %s", s.Name, kv.Key)
			}
			assert.NotContains(t, []string{"user.id", "enduser.id", "url.query", "url.full", "http.request.header.x-api-key"},
				string(kv.Key), "span %q", s.Name)
		}
		for _, f := range forbidden {
			assert.NotContains(t, s.Name, f)
		}
	}
}

// TestTraceRequestSamplesBeforeTheSpan: with Config.TraceRequest, a request
// it turns down makes no span at all (neither otelhttp's nor a commit's),
// and is answered as usual; one it lets through is traced as always, and
// its commit is linked to it. Here only callers with a sampled traceparent
// are traced, as parentbased_always_off would.
func TestTraceRequestSamplesBeforeTheSpan(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var asked atomic.Int64
	e := newEvalStack(t, withTracing(tp), withTraceRequest(func(parent trace.SpanContext) bool {
		asked.Add(1)
		return parent.IsValid() && parent.IsSampled()
	}))
	exp.Reset()
	asked.Store(0)

	for i := range 5 {
		r := e.evaluate(t, e.agentKey, evalBody(fmt.Sprintf("s-untraced-%d", i), "crm", "low", "loan_review"))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	}
	unsampled := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
	r := e.do(t, request{method: http.MethodPost, path: "/v1/context/evaluate", key: e.agentKey,
		body: evalBody("s-untraced-flag", "crm", "low", "loan_review"), header: unsampled})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, int64(6), asked.Load(), "asked once per request")
	assert.Empty(t, exp.GetSpans(), "a request turned down makes no span, nor does its commit")

	sampled := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	r = e.do(t, request{method: http.MethodPost, path: "/v1/context/evaluate", key: e.agentKey,
		body: evalBody("s-traced", "crm", "low", "loan_review"), header: sampled})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var request, commit *tracetest.SpanStub
	require.Eventually(t, func() bool {
		for _, s := range exp.GetSpans() {
			switch s.Name {
			case "POST /v1/context/evaluate":
				request = &s
			case "eventstore commit":
				commit = &s
			}
		}
		return request != nil && commit != nil
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", request.SpanContext.TraceID().String())
	require.Len(t, commit.Links, 1)
	assert.Equal(t, request.SpanContext.SpanID(), commit.Links[0].SpanContext.SpanID())
}

// BenchmarkEvaluateTracing runs durable evaluations through the server's
// handler (no network) with tracing off (no TracerProvider) and on, every
// request sampled, through the SDK's batch processor: into a discarding
// exporter (tracing=true: the spans' cost without their encoding), or
// into the OTLP/HTTP exporter that serve uses, posting to a local server
// that reads and discards each export (tracing=otlp: the spans' protobuf
// encoding and export too). allocs/op off is the hot path's own.
func BenchmarkEvaluateTracing(b *testing.B) {
	for _, mode := range []string{"false", "true", "otlp"} {
		b.Run("tracing="+mode, func(b *testing.B) {
			var tp trace.TracerProvider
			if mode != "false" {
				var exp sdktrace.SpanExporter = tracetest.NewNoopExporter()
				if mode == "otlp" {
					exp = discardingOTLP(b)
				}
				p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
				b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
				tp = p
			}
			s := newStack(b, withTracing(tp), withLogLevel(slog.LevelInfo))
			h := s.srv.Config.Handler
			call := func(method, path, key, body string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, path, strings.NewReader(body))
				req.Header.Set("X-API-Key", key)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w
			}
			w := call(http.MethodPost, "/v1/policies", s.admin, lendingPolicy)
			require.Equal(b, http.StatusCreated, w.Code, w.Body.String())
			w = call(http.MethodPatch, "/v1/agents/loan-agent/status", s.admin, `{"status":"approved"}`)
			require.Equal(b, http.StatusOK, w.Code, w.Body.String())
			w = call(http.MethodPost, "/v1/keys", s.admin, `{"name":"bench","scope":"evaluate","agent_id":"loan-agent"}`)
			require.Equal(b, http.StatusCreated, w.Code, w.Body.String())
			var created map[string]any
			require.NoError(b, json.Unmarshal(w.Body.Bytes(), &created))
			key := created["key"].(string)
			bodies := []string{
				evalBody("s-bench", "crm", "low", "loan_review"),        // ALLOW
				evalBody("s-bench", "hr_records", "low", "loan_review"), // DENY
			}
			b.ReportAllocs()
			b.SetParallelism(32) // enough waiting writers to share fsyncs
			b.ResetTimer()
			var i atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := call(http.MethodPost, "/v1/context/evaluate", key, bodies[i.Add(1)%2])
					if w.Code != http.StatusOK {
						b.Errorf("evaluate: %d %s", w.Code, w.Body.String())
						return
					}
				}
			})
		})
	}
}

// discardingOTLP returns an OTLP/HTTP exporter posting to a local server
// that reads each export, discards it and answers 200 (an empty
// ExportTraceServiceResponse); both are shut down by b's cleanup.
func discardingOTLP(b *testing.B) sdktrace.SpanExporter {
	b.Helper()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(collector.URL))
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = exp.Shutdown(context.Background())
		collector.Close()
	})
	return exp
}
