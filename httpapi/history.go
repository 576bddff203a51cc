package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/httpapi/wire"
)

// asOf returns the key, policy and agent tables as they were at the
// request's as_of (RFC 3339) and that instant, or a nil state when as_of is
// absent. A time before genesis gives empty tables. A malformed as_of is a
// 422 naming it.
func (s *Server) asOf(c echo.Context) (*domain.State, time.Time, error) {
	raw := c.QueryParam("as_of")
	if raw == "" {
		return nil, time.Time{}, nil
	}
	at, err := parseTimeParam("as_of", raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	state, err := tenantOf(c).Index.ReplayAt(c.Request().Context(), at)
	if err != nil {
		return nil, time.Time{}, err
	}
	return state, at, nil
}

// parseTimeParam parses an RFC 3339 query parameter or answers 422 naming
// it.
func parseTimeParam(name, raw string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err == nil && !t.After(time.Time{}) {
		return time.Time{}, echo.NewHTTPError(http.StatusUnprocessableEntity,
			"Invalid request: "+name+" must be after 0001-01-01T00:00:00Z.")
	}
	if err != nil {
		return time.Time{}, echo.NewHTTPError(http.StatusUnprocessableEntity,
			"Invalid request: "+name+" must be an RFC 3339 time such as 2030-01-31T12:00:00Z.")
	}
	return t.UTC(), nil
}

// keyHistory handles GET /v1/keys/history?format=jsonl|csv: the full
// credential history, one row per lifecycle fact, in time order.
func (s *Server) keyHistory(c echo.Context) error {
	if err := onlyQueryParams(c, "format"); err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "jsonl"
	}
	if format != "jsonl" && format != "csv" {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Invalid request: format must be jsonl or csv.")
	}
	facts, err := tenantOf(c).Index.KeyHistory(c.Request().Context(), tenantOf(c).Ledger.Now())
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="custos-key-history.%s"`, format))
	if format == "csv" {
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"time", "fact", "key_id", "name", "scope", "actor", "related_key_id", "seq", "event_id"}); err != nil {
			return s.abortStream(c, err)
		}
		for _, f := range facts {
			seq := ""
			if f.Seq > 0 {
				seq = strconv.FormatUint(f.Seq, 10)
			}
			if err := cw.Write(CSVSafe([]string{f.Time.UTC().Format(time.RFC3339Nano), f.Fact, f.KeyID, f.Name, f.Scope, f.Actor, f.RelatedKeyID, seq, f.EventID})); err != nil {
				return s.abortStream(c, err)
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return s.abortStream(c, err)
		}
		return nil
	}
	w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, f := range facts {
		row := wire.KeyFact{Time: f.Time.UTC(), Fact: f.Fact, KeyID: f.KeyID, Name: f.Name, Scope: f.Scope, Actor: f.Actor,
			RelatedKeyID: stringOrNil(f.RelatedKeyID), EventID: stringOrNil(f.EventID)}
		if f.Seq > 0 {
			seq := f.Seq
			row.Seq = &seq
		}
		if err := enc.Encode(row); err != nil {
			return s.abortStream(c, err)
		}
	}
	return nil
}

// abortStream ends a streamed answer whose status line is already sent:
// it logs err and cuts the connection, so the client sees an incomplete
// body instead of a silently short one.
func (s *Server) abortStream(c echo.Context, err error) error {
	s.cfg.Logger.Error("stream failed after the status line", "request_id", requestIDOf(c), "err", err)
	panic(http.ErrAbortHandler)
}
