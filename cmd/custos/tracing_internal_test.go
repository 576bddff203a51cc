package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestTracingFollowsTheOTELEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{name: "nothing set", env: nil},
		{name: "endpoint", env: map[string]string{envEndpoint: "http://127.0.0.1:4318"}, on: true},
		{name: "traces endpoint", env: map[string]string{envTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, on: true},
		{name: "exporter otlp alone", env: map[string]string{envTracesExporter: "otlp"}, on: true},
		{name: "exporter none wins", env: map[string]string{envTracesExporter: "none", envEndpoint: "http://127.0.0.1:4318"}},
		{name: "sdk disabled wins", env: map[string]string{envSDKDisabled: "true", envTracesExporter: "otlp"}},
		{name: "http/protobuf", env: map[string]string{envEndpoint: "http://x:4318", envProtocol: "http/protobuf"}, on: true},
		{name: "grpc refused", env: map[string]string{envEndpoint: "http://x:4317", envTracesProtocol: "grpc"}, err: "http/protobuf only"},
		{name: "console refused", env: map[string]string{envTracesExporter: "console"}, err: "otlp only"},
		{name: "ratio sampler", env: map[string]string{envEndpoint: "http://x:4318", envSampler: "parentbased_traceidratio", envSamplerArg: "0.01"}, on: true},
		{name: "unknown sampler refused", env: map[string]string{envEndpoint: "http://x:4318", envSampler: "jaeger_remote"}, err: "custos knows always_on"},
		{name: "bad ratio refused", env: map[string]string{envEndpoint: "http://x:4318", envSampler: "traceidratio", envSamplerArg: "1.5"}, err: "want a ratio from 0 to 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			tr, err := newTracing(context.Background(), lookup, "test", slog.New(slog.DiscardHandler))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.on, tr.provider != nil)
			require.NoError(t, tr.shutdown(context.Background()))
			require.NoError(t, tr.shutdown(context.Background()), "shutdown is safe twice")
		})
	}
}

// TestRequestSamplerFollowsTheSpecification: each OTEL_TRACES_SAMPLER value
// decides for a request without a caller's trace context, with a sampled
// one and with an unsampled one, as the OpenTelemetry SDK's sampler of that
// name does.
func TestRequestSamplerFollowsTheSpecification(t *testing.T) {
	t.Parallel()
	low, _ := trace.TraceIDFromHex("00000000000000000000000000000001")  // below any ratio but 0
	high, _ := trace.TraceIDFromHex("0000000000000000ffffffffffffffff") // above any ratio but 1
	span, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := func(id trace.TraceID, sampled bool) trace.SpanContext {
		cfg := trace.SpanContextConfig{TraceID: id, SpanID: span, Remote: true}
		if sampled {
			cfg.TraceFlags = trace.FlagsSampled
		}
		return trace.NewSpanContext(cfg)
	}
	type want struct{ rootLow, rootHigh, sampledHigh, unsampledLow bool }
	for _, tc := range []struct {
		sampler, arg string
		want         want
	}{
		{"", "", want{true, true, true, false}},
		{"parentbased_always_on", "", want{true, true, true, false}},
		{"always_on", "", want{true, true, true, true}},
		{"always_off", "", want{false, false, false, false}},
		{"parentbased_always_off", "", want{false, false, true, false}},
		{"traceidratio", "0.5", want{true, false, false, true}},
		{"TraceIdRatio", "", want{true, true, true, true}}, // default ratio 1
		{"parentbased_traceidratio", "0.5", want{true, false, true, false}},
		{"parentbased_traceidratio", "0", want{false, false, true, false}},
	} {
		t.Run(tc.sampler+" "+tc.arg, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{envSampler: tc.sampler, envSamplerArg: tc.arg}
			// random stands in for a request that starts a trace: 0.25 is
			// below a ratio of 0.5, 0.75 above it.
			for _, r := range []struct {
				random float64
				want   bool
			}{{0.25, tc.want.rootLow}, {0.75, tc.want.rootHigh}} {
				decide, err := requestSampler(func(k string) string { return env[k] }, func() float64 { return r.random })
				require.NoError(t, err)
				assert.Equal(t, r.want, decide(trace.SpanContext{}), "no caller, random %v", r.random)
			}
			decide, err := requestSampler(func(k string) string { return env[k] }, func() float64 { return 0.99 })
			require.NoError(t, err)
			assert.Equal(t, tc.want.sampledHigh, decide(parent(high, true)), "sampled caller, high trace id")
			assert.Equal(t, tc.want.unsampledLow, decide(parent(low, false)), "unsampled caller, low trace id")
		})
	}
	for _, bad := range []map[string]string{
		{envSampler: "xray"},
		{envSampler: "traceidratio", envSamplerArg: "-0.1"},
		{envSampler: "traceidratio", envSamplerArg: "NaN"},
		{envSampler: "parentbased_traceidratio", envSamplerArg: "half"},
	} {
		_, err := requestSampler(func(k string) string { return bad[k] }, func() float64 { return 0 })
		require.Error(t, err, "%v", bad)
	}
}

// TestTracingWarnsWhenEveryRequestIsSampled: the start warns, with the cost,
// when the sampler traces every request without a caller's trace context
// (the OpenTelemetry default among them), and not under a ratio below 1 or
// a sampler that follows callers only.
func TestTracingWarnsWhenEveryRequestIsSampled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sampler, arg string
		warns        bool
	}{
		{"", "", true},
		{"parentbased_always_on", "", true},
		{"always_on", "", true},
		{"traceidratio", "", true},
		{"parentbased_traceidratio", "1", true},
		{"parentbased_traceidratio", "0.01", false},
		{"traceidratio", "0.5", false},
		{"parentbased_always_off", "", false},
		{"always_off", "", false},
	} {
		t.Run(tc.sampler+" "+tc.arg, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{envEndpoint: "http://127.0.0.1:4318", envSampler: tc.sampler, envSamplerArg: tc.arg}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			var logs bytes.Buffer
			tr, err := newTracing(context.Background(), lookup, "test", slog.New(slog.NewJSONHandler(&logs, nil)))
			require.NoError(t, err)
			require.NoError(t, tr.shutdown(context.Background()))
			require.Contains(t, logs.String(), `"msg":"tracing on"`)
			if tc.warns {
				assert.Contains(t, logs.String(), `"level":"WARN","msg":"tracing every request`)
				assert.Contains(t, logs.String(), "OTEL_TRACES_SAMPLER=parentbased_traceidratio")
			} else {
				assert.NotContains(t, logs.String(), "tracing every request")
			}
		})
	}
}
