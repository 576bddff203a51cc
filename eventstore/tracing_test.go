package eventstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/custos-dev/custos/eventstore"
)

// TestCommitSpanLinksCallers: every group commit that carries a sampled
// caller is one span, with an fsync child span, linked to the span context
// of each sampled Enqueue call it carried; a commit that carries none makes
// no span.
func TestCommitSpanLinksCallers(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := open(t, vfs.Default, t.TempDir(), func(o *eventstore.Options) { o.TracerProvider = tp })
	tracer := tp.Tracer("test")

	const callers = 8
	want := map[trace.SpanID]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			ctx, span := tracer.Start(context.Background(), "caller")
			defer span.End()
			mu.Lock()
			want[span.SpanContext().SpanID()] = true
			mu.Unlock()
			_, err := s.Append(ctx, eventstore.DefaultChain, draft(i))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	// An Enqueue without a span in its ctx is committed in a commit that
	// makes no span; so is one whose span was not sampled (never exported).
	_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(callers))
	require.NoError(t, err)
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	require.True(t, unsampled.IsValid())
	_, err = s.Append(trace.ContextWithSpanContext(context.Background(), unsampled), eventstore.DefaultChain, draft(callers+1))
	require.NoError(t, err)

	linked := map[trace.SpanID]bool{}
	commits := map[trace.SpanID]tracetest.SpanStub{}
	var fsyncs []tracetest.SpanStub
	records := 0
	for _, sp := range exp.GetSpans() {
		switch sp.Name {
		case "eventstore commit":
			commits[sp.SpanContext.SpanID()] = sp
			assert.False(t, sp.Parent.IsValid(), "a commit span is a root")
			assert.NotEmpty(t, sp.Links, "a commit span links a sampled caller")
			for _, l := range sp.Links {
				linked[l.SpanContext.SpanID()] = true
			}
			attrs := attribute.NewSet(sp.Attributes...)
			v, ok := attrs.Value("custos.commit.records")
			require.True(t, ok)
			records += int(v.AsInt64())
			v, _ = attrs.Value("custos.chain")
			assert.Equal(t, eventstore.DefaultChain, v.AsString())
		case "fsync":
			fsyncs = append(fsyncs, sp)
		}
	}
	assert.Equal(t, want, linked, "every caller's span is linked from exactly the commits that carried it")
	assert.Equal(t, callers, records, "only the commits of sampled callers have spans")
	require.Len(t, fsyncs, len(commits))
	for _, f := range fsyncs {
		parent, ok := commits[f.Parent.SpanID()]
		require.True(t, ok, "fsync is a child of a commit span")
		assert.False(t, f.StartTime.Before(parent.StartTime))
		assert.False(t, f.EndTime.After(parent.EndTime))
		assert.Positive(t, f.EndTime.Sub(f.StartTime))
	}
}
