package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracing is what serve traces with: a nil provider means tracing is off,
// and nothing is instrumented (cheaper than a no-op provider: no spans are
// started at all).
type tracing struct {
	provider trace.TracerProvider // nil when off
	// traceRequest is the head sampling decision of OTEL_TRACES_SAMPLER,
	// taken before a request gets a span (httpapi.Config.TraceRequest);
	// the provider samples every span it is asked for. Nil when off.
	traceRequest func(parent trace.SpanContext) bool
	// shutdown flushes the spans still buffered and stops the exporter;
	// safe to call twice, a no-op when off.
	shutdown func(ctx context.Context) error
}

// Environment variables serve reads itself; the OTLP exporter, the SDK and
// the resource read the rest of the OTEL_* set (endpoint, headers, timeout,
// sampler, batch sizes, service name, resource attributes).
const (
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envSampler        = "OTEL_TRACES_SAMPLER"
	envSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
)

// requestSampler returns the head sampling decision OTEL_TRACES_SAMPLER
// and OTEL_TRACES_SAMPLER_ARG name, for a request whose caller's span
// context is parent (not valid without one): the six samplers of the
// OpenTelemetry specification, parentbased_always_on when unset. A
// parentbased_ sampler follows a caller's sampled flag and decides alone
// for a request without one; traceidratio decides by the caller's trace
// id as the SDK's does (so that every service of a trace agrees), or by
// random, which returns a float in [0, 1), for a request that starts a
// trace. A ratio (OTEL_TRACES_SAMPLER_ARG, default 1.0) must be in [0, 1];
// anything else is an error, not a silent default.
func requestSampler(get func(string) string, random func() float64) (func(parent trace.SpanContext) bool, error) {
	name := strings.ToLower(get(envSampler))
	base, parentBased := strings.CutPrefix(name, "parentbased_")
	if name == "" {
		base, parentBased = "always_on", true
	}
	var own func(parent trace.SpanContext) bool
	switch base {
	case "always_on":
		own = func(trace.SpanContext) bool { return true }
	case "always_off":
		own = func(trace.SpanContext) bool { return false }
	case "traceidratio":
		ratio := 1.0
		if arg := get(envSamplerArg); arg != "" {
			r, err := strconv.ParseFloat(arg, 64)
			if err != nil || !(r >= 0 && r <= 1) {
				return nil, fmt.Errorf("%s=%q: want a ratio from 0 to 1", envSamplerArg, arg)
			}
			ratio = r
		}
		bound := uint64(ratio * (1 << 63))
		own = func(parent trace.SpanContext) bool {
			if parent.IsValid() {
				id := parent.TraceID()
				return binary.BigEndian.Uint64(id[8:16])>>1 < bound
			}
			return random() < ratio
		}
	default:
		return nil, fmt.Errorf("%s=%q: custos knows always_on, always_off, traceidratio and their parentbased_ forms", envSampler, name)
	}
	if !parentBased {
		return own, nil
	}
	return func(parent trace.SpanContext) bool {
		if parent.IsValid() {
			return parent.IsSampled()
		}
		return own(parent)
	}, nil
}

// fullSamplingWarning is what serve warns at start when its sampler traces
// every request that comes without a caller's trace context: the
// OpenTelemetry default, which an operator who sets only an endpoint gets.
const fullSamplingWarning = "tracing every request: about a third more server CPU per decision, where 1% sampling costs nothing measurable (docs/benchmarks.md, \"Traces\")"

// samplesEveryRequest reports whether the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name (already validated by requestSampler)
// samples every request that starts a trace: always_on, traceidratio at
// ratio 1, their parentbased_ forms, and the default.
func samplesEveryRequest(get func(string) string) bool {
	base := strings.TrimPrefix(strings.ToLower(get(envSampler)), "parentbased_")
	switch base {
	case "", "always_on":
		return true
	case "traceidratio":
		arg := get(envSamplerArg)
		r, err := strconv.ParseFloat(arg, 64)
		return arg == "" || (err == nil && r >= 1)
	}
	return false
}

// newTracing sets up tracing from the standard OTEL_* environment: off
// unless OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint is set, and off
// whenever OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true. Spans go to
// the OTLP/HTTP exporter (http/protobuf) through a batch span processor.
// Exporter errors (a collector that is down) are logged at warn through
// otel's global error handler: the one otel global serve sets, since the
// exporter reports only there.
func newTracing(ctx context.Context, lookup func(string) (string, bool), version string, logger *slog.Logger) (tracing, error) {
	off := tracing{shutdown: func(context.Context) error { return nil }}
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get(envSDKDisabled), "true") {
		return off, nil
	}
	endpoint := get(envTracesEndpoint)
	if endpoint == "" {
		endpoint = get(envEndpoint)
	}
	switch exporter := strings.ToLower(get(envTracesExporter)); exporter {
	case "none":
		return off, nil
	case "":
		if endpoint == "" {
			return off, nil
		}
	case "otlp":
	default:
		return off, fmt.Errorf("%s=%q: custos exports traces over otlp only (or none)", envTracesExporter, exporter)
	}
	protocol := get(envTracesProtocol)
	if protocol == "" {
		protocol = get(envProtocol)
	}
	if protocol != "" && protocol != "http/protobuf" {
		return off, fmt.Errorf("OTLP protocol %q: custos exports traces over http/protobuf only (%s, %s)", protocol, envTracesProtocol, envProtocol)
	}
	traceRequest, err := requestSampler(get, rand.Float64)
	if err != nil {
		return off, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("custos"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return off, fmt.Errorf("trace resource: %w", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing", "err", err)
	}))
	// The sampling decision is traceRequest's, taken before a request has
	// a span; the provider samples what it is asked to start (a request
	// traceRequest let through, a commit that carries one).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	if endpoint == "" {
		endpoint = "http://localhost:4318 (the OTLP default)"
	} else if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted()
	}
	sampler := get(envSampler)
	if sampler == "" {
		sampler = "parentbased_always_on (the default)"
	}
	logger.Info("tracing on", "exporter", "otlp", "protocol", "http/protobuf", "endpoint", endpoint, "sampler", sampler, "sampler_arg", get(envSamplerArg))
	if samplesEveryRequest(get) {
		logger.Warn(fullSamplingWarning, "sampler", sampler,
			"instead", "OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 (1% of requests, and every caller's sampled traceparent)")
	}
	return tracing{provider: tp, traceRequest: traceRequest, shutdown: tp.Shutdown}, nil
}
