package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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

// traceRequest makes the request's server span, once echo has routed it:
// named "METHOD /route" after the registered path (the method alone when
// no route matched), with the caller's trace context (Config.Propagator)
// as its parent. http.route and url.path are both the route, so a path
// parameter (a key id, an agent id) never leaves the process. It runs
// outside every other middleware, so the status it records is the one the
// error handler answered.
func (s *Server) traceRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := s.cfg.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		name, route := req.Method, c.Path()
		if route != "" {
			name += " " + route
		}
		ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(req.Method),
				semconv.HTTPRoute(route),
				semconv.URLPath(route),
			))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
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

// tracerName names the server's tracer (instrumentation scope).
const tracerName = "github.com/custos-dev/custos/httpapi"
