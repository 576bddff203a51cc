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

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
)

// Fixed details. They say nothing about the cause that could help an attacker
// or leak internals.
const (
	detailInvalidKey  = "Invalid or revoked API key."
	detailUnavailable = "audit log unavailable"
	detailInternal    = "Internal server error."
	detailKeyNotFound = "Key not found."
)

// errorBody is the body of every error response.
type errorBody struct {
	Detail string `json:"detail"`
}

// statusOf maps err to a status and a detail. It matches with errors.Is and
// errors.As only, so errors wrapped with %w or joined map like the original.
func statusOf(err error) (code int, detail string) {
	var (
		httpErr *echo.HTTPError
		invalid *keys.ValidationError
	)
	switch {
	case errors.Is(err, eventstore.ErrStoreFailed), errors.Is(err, eventstore.ErrClosed):
		return http.StatusServiceUnavailable, detailUnavailable
	case errors.As(err, &invalid):
		return http.StatusUnprocessableEntity, validationDetail(err)
	case errors.Is(err, keys.ErrInvalidKey):
		return http.StatusForbidden, detailInvalidKey
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
	if werr := c.JSON(code, errorBody{Detail: detail}); werr != nil {
		s.cfg.Logger.Warn("write error response", "request_id", requestIDOf(c), "err", werr)
	}
}

// validationDetail names every field of every *keys.ValidationError in err
// and what is allowed, in the order the domain reported them.
func validationDetail(err error) string {
	var parts []string
	walk(err, func(e error) bool {
		// Collect e when it is itself a ValidationError; walk on through
		// wrappers and joins otherwise.
		var v *keys.ValidationError
		if errors.As(e, &v) && e == error(v) {
			parts = append(parts, v.Field+" "+v.Problem)
			return false
		}
		return true
	})
	return "Invalid request: " + strings.Join(parts, "; ") + "."
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
