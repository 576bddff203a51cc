package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
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
)

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
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	if endpoint == "" {
		endpoint = "http://localhost:4318 (the OTLP default)"
	} else if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted()
	}
	logger.Info("tracing on", "exporter", "otlp", "protocol", "http/protobuf", "endpoint", endpoint)
	return tracing{provider: tp, shutdown: tp.Shutdown}, nil
}
