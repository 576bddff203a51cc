package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/custos-dev/custos/domain/decision"
)

// Attributes of an evaluation's request span. They say what was decided and
// by which policy; never who asked or about what (no key, key id, user id or
// query text).
const (
	attrDecision         = attribute.Key("custos.decision")
	attrPolicyName       = attribute.Key("custos.policy_name")
	attrPolicyID         = attribute.Key("custos.policy_id")
	attrDenialType       = attribute.Key("custos.denial_type")
	attrPolicyResolution = attribute.Key("custos.policy_resolution")
)

// traced returns h inside otelhttp's server span when Config.TracerProvider
// is set, and h itself when it is not: tracing off puts nothing in the
// handler chain. The span takes the caller's trace context
// (Config.Propagator) as its parent and records what otelhttp records for
// a server (method, status, sizes, peer and client address, user agent);
// otelhttp's metrics go to a no-op meter (custos's metrics are its
// Prometheus ones). traceRoute, the first echo middleware, names the span
// once echo has routed the request. The Ledger's appends see the span in
// the request's context, so the group commit that carries a request's
// records links to it.
//
// With Config.TraceRequest, a request it turns down skips otelhttp and
// runs h as it is, with no span in its context.
func (s *Server) traced(h http.Handler) http.Handler {
	tp := s.cfg.TracerProvider
	if tp == nil {
		return h
	}
	inner := otelhttp.NewHandler(h, "custos",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(s.cfg.Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()))
	decide, prop := s.cfg.TraceRequest, s.cfg.Propagator
	if decide == nil {
		return inner
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var parent trace.SpanContext
		if !isTraceContext(prop) || r.Header.Get("Traceparent") != "" {
			parent = trace.SpanContextFromContext(prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		if decide(parent) {
			inner.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isTraceContext reports whether p is the W3C trace context propagator
// alone, which reads nothing from a request without a traceparent header.
func isTraceContext(p propagation.TextMapPropagator) bool {
	_, ok := p.(propagation.TraceContext)
	return ok
}

// traceRoute names the request's span "METHOD /route" after the registered
// echo path, and sets http.route and url.path to that route: otelhttp
// starts the span before routing, with the raw path as url.path, and the
// raw path can hold a key id or an agent id, which must not leave the
// process. A request that matched no route gets the registered path echo
// matched nearest, or none (then the name stays otelhttp's, the method
// alone, and url.path is empty). Installed as the first echo middleware,
// only with tracing on.
func traceRoute(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		span := trace.SpanFromContext(c.Request().Context())
		if !span.IsRecording() {
			return next(c)
		}
		route := c.Path()
		if route != "" {
			span.SetName(c.Request().Method + " " + route)
		}
		span.SetAttributes(semconv.HTTPRoute(route), semconv.URLPath(route))
		return next(c)
	}
}

// traceDecision adds the decision attributes to the request's span, in
// one call: custos.decision always, and each of the others only when it
// has a value (an ALLOW has no denial type, a denial before any policy
// decided has no policy id or resolution). Every attribute is encoded and
// exported with every span, so an empty one would only cost.
func traceDecision(c echo.Context, made decision.Made) {
	span := trace.SpanFromContext(c.Request().Context())
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 1, 5)
	attrs[0] = attrDecision.String(made.Decision)
	for _, kv := range [...]struct {
		key   attribute.Key
		value string
	}{
		{attrPolicyName, made.PolicyName},
		{attrPolicyID, made.PolicyID},
		{attrDenialType, made.DenialType},
		{attrPolicyResolution, made.PolicyResolution},
	} {
		if kv.value != "" {
			attrs = append(attrs, kv.key.String(kv.value))
		}
	}
	span.SetAttributes(attrs...)
}
