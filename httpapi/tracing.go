package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
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

// traced wraps next in otelhttp when Config.TracerProvider is set: a server
// span per request, the incoming trace context extracted with
// Config.Propagator, the status and sizes recorded. Its metrics go to a
// no-op meter: GET /metrics already counts requests.
func (s *Server) traced(next http.Handler) http.Handler {
	tp := s.cfg.TracerProvider
	if tp == nil {
		return next
	}
	return otelhttp.NewHandler(next, "http",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(s.cfg.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		// Until the route is known (nameSpan), the method alone, as
		// the HTTP semantic conventions name a span without a route.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// nameSpan names the request's span after its route, "POST
// /v1/context/evaluate", and sets http.route; url.path becomes the route
// as well, so a path parameter (a key id, an agent id) never leaves the
// process. Unrouted requests keep the method alone.
func nameSpan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		span := trace.SpanFromContext(c.Request().Context())
		if route := c.Path(); span.IsRecording() && route != "" {
			span.SetName(c.Request().Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route), semconv.URLPath(route))
		}
		return next(c)
	}
}

// traceDecision adds the decision attributes to the request's span.
func traceDecision(c echo.Context, made decision.Made) {
	span := trace.SpanFromContext(c.Request().Context())
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		attrDecision.String(made.Decision),
		attrPolicyName.String(made.PolicyName),
		attrPolicyID.String(made.PolicyID),
		attrDenialType.String(made.DenialType),
		attrPolicyResolution.String(made.PolicyResolution),
	)
}
