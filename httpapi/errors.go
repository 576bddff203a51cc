package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/domain/text"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/writeside"
)

// Fixed details. They say nothing about the cause that could help an attacker
// or leak internals.
const (
	detailInvalidKey = "Invalid or revoked API key."
	// detailInsufficientScope answers a change whose key's scope does not
	// allow it at the moment it is ordered (the route table lets it through
	// only when the scope fits, so this is a guard, not a path).
	detailInsufficientScope = "Insufficient scope for this change."
	detailUnboundKey        = "This server lets only keys bound to an agent evaluate (--require-bound-keys); this key is bound to none."
	detailUnavailable       = "audit log unavailable"
	detailIndexFailed       = "Audit index unavailable: the server's derived data failed; decisions are still recorded. Restart the server to rebuild the index."
	detailInternal          = "Internal server error."
	detailKeyNotFound       = "Key not found."
	detailPolicyNotFound    = "Policy not found."
	detailAgentNotFound     = "Agent not found."
	detailSessionNotFound   = "Session not found."
)

// statusOf maps err to a status and a detail. It matches with errors.Is and
// errors.As only, so errors wrapped with %w or joined map like the original.
func statusOf(err error) (code int, detail string) {
	var httpErr *echo.HTTPError
	var retired *agentRetiredError
	if code, detail, ok := alertStatus(err); ok {
		return code, detail
	}
	if code, detail, ok := tenantStatus(err); ok {
		return code, detail
	}
	switch {
	case errors.Is(err, eventstore.ErrStoreFailed), errors.Is(err, eventstore.ErrClosed):
		return http.StatusServiceUnavailable, detailUnavailable
	case errors.Is(err, eventstore.ErrFenced):
		// A node of a cluster stopped sequencing the chain (cluster.go).
		return http.StatusServiceUnavailable, detailFenced
	case errors.Is(err, eventstore.ErrDerivedFailed):
		return http.StatusServiceUnavailable, detailIndexFailed
	case errors.Is(err, text.ErrRefused) && hasFieldProblem(err):
		// A refused character is malformed input, not a broken rule: 400,
		// with every field problem named as for 422.
		return http.StatusBadRequest, validationDetail(err)
	case hasFieldProblem(err):
		return http.StatusUnprocessableEntity, validationDetail(err)
	case errors.Is(err, policy.ErrNotFound):
		return http.StatusNotFound, detailPolicyNotFound
	case errors.Is(err, policy.ErrConflict):
		return http.StatusConflict, conflictDetail(err)
	case errors.As(err, &retired):
		return http.StatusNotFound, retired.Error()
	case errors.Is(err, agents.ErrNotFound):
		return http.StatusNotFound, detailAgentNotFound
	case errors.Is(err, agents.ErrConflict):
		return http.StatusConflict, sentence(err.Error())
	case errors.Is(err, errSessionNotFound):
		return http.StatusNotFound, detailSessionNotFound
	case errors.Is(err, keys.ErrInvalidKey):
		return http.StatusForbidden, detailInvalidKey
	case errors.Is(err, keys.ErrInsufficientScope):
		return http.StatusForbidden, detailInsufficientScope
	case errors.Is(err, writeside.ErrUnboundKey):
		return http.StatusForbidden, detailUnboundKey
	case errors.Is(err, keys.ErrNotFound):
		return http.StatusNotFound, detailKeyNotFound
	case errors.Is(err, keys.ErrConflict):
		// The specific conflict's own message is the detail.
		for _, c := range []error{keys.ErrLastAdmin, keys.ErrRevoked, keys.ErrExpired, keys.ErrRotated} {
			if errors.Is(err, c) {
				return http.StatusConflict, sentence(c.Error())
			}
		}
		return http.StatusConflict, sentence(keys.ErrConflict.Error())
	case errors.As(err, &httpErr):
		return httpErr.Code, httpDetail(httpErr)
	}
	return http.StatusInternalServerError, detailInternal
}

// handleError is the Echo HTTPErrorHandler: the one place errors become
// responses.
func (s *Server) handleError(err error, c echo.Context) {
	code, detail := statusOf(err)
	if code >= 500 {
		s.cfg.Logger.LogAttrs(c.Request().Context(), slog.LevelError, "request failed",
			slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.Int("status", code),
			slog.String("request_id", requestIDOf(c)),
			slog.String("err", err.Error()),
		)
	}
	if c.Response().Committed {
		return // the handler already answered; nothing more can be sent
	}
	if werr := c.JSON(code, wire.ErrorBody{Detail: detail}); werr != nil {
		s.cfg.Logger.Warn("write error response", "request_id", requestIDOf(c), "err", werr)
	}
}

// fieldProblem returns the field and problem of e when e itself (not what it
// wraps) is one of the domain's field validation errors.
func fieldProblem(e error) (field, problem string, ok bool) {
	switch v := e.(type) {
	case *keys.ValidationError:
		return v.Field, v.Problem, true
	case *policy.FieldError:
		return v.Field, v.Problem, true
	case *decision.FieldError:
		return v.Field, v.Problem, true
	case *agents.ValidationError:
		return v.Field, v.Problem, true
	case *alerts.FieldError:
		return v.Field, v.Problem, true
	case *tenants.ValidationError:
		return v.Field, v.Problem, true
	}
	return "", "", false
}

// hasFieldProblem reports whether err holds a field validation error (422).
func hasFieldProblem(err error) bool {
	found := false
	walk(err, func(e error) bool {
		_, _, found = fieldProblem(e)
		return !found
	})
	return found
}

// validationDetail names every field of every field validation error in err
// and what is allowed, in the order the domain reported them.
func validationDetail(err error) string {
	var parts []string
	walk(err, func(e error) bool {
		// Collect e when it is itself a field error; walk on through
		// wrappers and joins otherwise.
		if field, problem, ok := fieldProblem(e); ok {
			parts = append(parts, field+" "+problem)
			return false
		}
		return true
	})
	return "Invalid request: " + strings.Join(parts, "; ") + "."
}

// conflictDetail lists every *policy.ConflictError in err, or err's own
// message.
func conflictDetail(err error) string {
	var parts []string
	walk(err, func(e error) bool {
		if c, ok := e.(*policy.ConflictError); ok {
			parts = append(parts, strings.TrimPrefix(c.Error(), "policy: "))
			return false
		}
		return true
	})
	if len(parts) == 0 {
		return sentence(err.Error())
	}
	return "Conflict: " + strings.Join(parts, "; ") + "."
}

// walk calls fn for err and, while fn returns true, for what err wraps,
// depth first in order.
func walk(err error, fn func(error) bool) {
	if err == nil || !fn(err) {
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	}
}

func httpDetail(e *echo.HTTPError) string {
	switch m := e.Message.(type) {
	case string:
		return m
	case error:
		return m.Error()
	case nil:
		return http.StatusText(e.Code)
	default:
		return fmt.Sprint(m)
	}
}

// sentence turns an error message ("keys: key is already revoked") into a
// detail ("Key is already revoked.").
func sentence(msg string) string {
	if i := strings.Index(msg, ": "); i > 0 && !strings.Contains(msg[:i], " ") {
		msg = msg[i+2:] // drop the package prefix
	}
	if r, n := utf8.DecodeRuneInString(msg); n > 0 {
		msg = string(unicode.ToUpper(r)) + msg[n:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
