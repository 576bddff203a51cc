package httpapi

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/readside"
)

// Query limits of GET /v1/audit/events.
const (
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
)

// filterParams are the query parameters every audit query and export
// accepts.
var filterParams = []string{"type", "key_id", "agent_id", "agent_role", "session_id", "source_id", "decision", "from", "to"}

// eventFilter reads the filter parameters; malformed ones answer 422
// naming the parameter.
func eventFilter(c echo.Context) (readside.EventFilter, error) {
	f := readside.EventFilter{
		Type: c.QueryParam("type"), KeyID: c.QueryParam("key_id"), AgentID: c.QueryParam("agent_id"),
		AgentRole: c.QueryParam("agent_role"), SessionID: c.QueryParam("session_id"),
		SourceID: c.QueryParam("source_id"), Decision: c.QueryParam("decision"),
	}
	if f.Decision != "" && f.Decision != decision.Allow && f.Decision != decision.Deny {
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "Invalid request: decision must be ALLOW or DENY.")
	}
	var err error
	if raw := c.QueryParam("from"); raw != "" {
		if f.From, err = parseTimeParam("from", raw); err != nil {
			return f, err
		}
	}
	if raw := c.QueryParam("to"); raw != "" {
		if f.To, err = parseTimeParam("to", raw); err != nil {
			return f, err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "Invalid request: to must not be before from.")
	}
	return f, nil
}

// uintParam parses an optional unsigned query parameter within [lo, hi].
func uintParam(c echo.Context, name string, def, lo, hi uint64) (uint64, error) {
	raw := c.QueryParam(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, echo.NewHTTPError(http.StatusUnprocessableEntity,
			fmt.Sprintf("Invalid request: %s must be a whole number from %d to %d.", name, lo, hi))
	}
	return n, nil
}

// newAuditEvent shows r as the audit query does: the envelope, the decoded
// payload and both hashes.
func newAuditEvent(r eventstore.Record) wire.Event {
	payload := json.RawMessage(r.Payload)
	if !json.Valid(payload) {
		payload, _ = json.Marshal(r.Payload) // base64 string: never lose bytes
	}
	return wire.Event{
		Seq: r.Seq, ID: r.ID, Time: r.Time, Type: r.Type, Actor: r.Actor, Payload: payload,
		PrevHash: hex.EncodeToString(r.PrevHash[:]), Hash: hex.EncodeToString(r.Hash[:]), HashVersion: r.HashVersion,
	}
}

// listEvents handles GET /v1/audit/events.
func (s *Server) listEvents(c echo.Context) error {
	if err := onlyQueryParams(c, append(filterParams, "after_seq", "limit")...); err != nil {
		return err
	}
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	after, err := uintParam(c, "after_seq", 0, 0, 1<<63)
	if err != nil {
		return err
	}
	limit, err := uintParam(c, "limit", defaultEventsLimit, 1, maxEventsLimit)
	if err != nil {
		return err
	}
	resp := wire.EventPage{Events: []wire.Event{}}
	last, more, err := tenantOf(c).Index.Query(c.Request().Context(), f, after, int(limit), func(r eventstore.Record) error {
		resp.Events = append(resp.Events, newAuditEvent(r))
		return nil
	})
	if err != nil {
		return err
	}
	if more {
		resp.NextAfterSeq = &last
	}
	return c.JSON(http.StatusOK, resp)
}

// exportEvents handles GET /v1/audit/export: every matching event, streamed
// in constant memory. JSONL lines follow docs/export-format.md, so an
// unfiltered export (optionally from_seq..to_seq) verifies offline with
// `custos verify --export`; a filtered one has gaps, but every line still
// carries what recomputes its own hash.
func (s *Server) exportEvents(c echo.Context) error {
	if err := onlyQueryParams(c, append(filterParams, "format", "from_seq", "to_seq")...); err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "jsonl"
	}
	if format != "jsonl" && format != "csv" {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Invalid request: format must be jsonl or csv.")
	}
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	from, err := uintParam(c, "from_seq", 1, 1, 1<<63)
	if err != nil {
		return err
	}
	to, err := uintParam(c, "to_seq", 0, 1, 1<<63)
	if err != nil {
		return err
	}
	if to != 0 && to < from {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Invalid request: to_seq must not be below from_seq.")
	}

	w := c.Response()
	if format == "csv" {
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	} else {
		w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="custos-events.%s"`, format))
	w.WriteHeader(http.StatusOK)

	var write func(r eventstore.Record) error
	var flush func() error
	if format == "csv" {
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return err
		}
		write = func(r eventstore.Record) error { return cw.Write(CSVSafe(CSVRow(r))) }
		flush = func() error { cw.Flush(); return cw.Error() }
	} else {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(r eventstore.Record) error {
			line := export.LineFromRecord(r)
			line.Payload, _ = export.JSONPayload(r.Type, r.Payload)
			return enc.Encode(line)
		}
		flush = func() error { return nil }
	}
	n := 0
	_, _, err = tenantOf(c).Index.Query(c.Request().Context(), f, from-1, 0, func(r eventstore.Record) error {
		if to != 0 && r.Seq > to {
			return errExportDone
		}
		if err := write(r); err != nil {
			return err
		}
		if n++; n%1024 == 0 {
			if err := flush(); err != nil {
				return err
			}
			w.Flush()
		}
		return nil
	})
	if err == nil || errors.Is(err, errExportDone) {
		err = flush()
	}
	if err != nil {
		return s.abortStream(c, err)
	}
	return nil
}

var errExportDone = errors.New("export: past to_seq")

// CSVHeader is the header of CSV event exports (GET /v1/audit/export and
// custos export): the envelope, the decision's main fields, and the hashes.
var CSVHeader = []string{"seq", "id", "time", "type", "actor", "decision", "reason", "policy_name", "policy_version",
	"agent_id", "agent_role", "session_id", "source_id", "sensitivity_level", "action", "key_id", "prev_hash", "hash"}

// CSVRow renders one record as a CSV export row (see CSVHeader).
func CSVRow(r eventstore.Record) []string {
	row := []string{strconv.FormatUint(r.Seq, 10), r.ID, r.Time.Format(time.RFC3339Nano), r.Type, r.Actor,
		"", "", "", "", "", "", "", "", "", "", "", hex.EncodeToString(r.PrevHash[:]), hex.EncodeToString(r.Hash[:])}
	if r.Type == decision.TypeMade {
		if m, err := decision.Decode(r.Type, r.Payload); err == nil {
			version := ""
			if m.PolicyVersion > 0 {
				version = strconv.Itoa(m.PolicyVersion)
			}
			copy(row[5:16], []string{m.Decision, m.Reason, m.PolicyName, version, m.Request.AgentID, m.Request.AgentRole,
				m.Request.SessionID, m.Request.SourceID, string(m.Request.Sensitivity), string(m.Request.Action), m.KeyID})
		}
	}
	return row
}
