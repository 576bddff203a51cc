package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/httpapi/wire"
)

// VerifyChain replays the server's live chain from genesis (GET
// /v1/audit/verify; read).
func (c *Client) VerifyChain(ctx context.Context) (wire.VerifyReport, error) {
	var out wire.VerifyReport
	err := c.do(ctx, http.MethodGet, "/v1/audit/verify", nil, nil, &out)
	return out, err
}

// SessionTrail returns every decision of a session (GET
// /v1/audit/sessions/{id}; read): ErrNotFound for a session without events.
func (c *Client) SessionTrail(ctx context.Context, sessionID string) (wire.SessionTrail, error) {
	var out wire.SessionTrail
	err := c.do(ctx, http.MethodGet, "/v1/audit/sessions/"+seg(sessionID), nil, nil, &out)
	return out, err
}

// EventDecisionMade is the type of the event that records one evaluation.
// Event types are stable wire names, never renamed: key.created,
// policy.updated, agent.registered, decision.made and so on.
const EventDecisionMade = decision.TypeMade

// Export formats of Export.
const (
	// ExportJSONL is JSON Lines as docs/export-format.md describes them: an
	// unfiltered export verifies offline with custos verify --export.
	ExportJSONL = "jsonl"
	// ExportCSV is one row per event under a header: the envelope, the
	// main fields of decisions and both hashes.
	ExportCSV = "csv"
)

// MaxEventLimit is the largest page the server answers (EventQuery.Limit).
const MaxEventLimit = 1000

// EventFilter narrows Events, AllEvents and Export; empty fields do not
// filter, set fields must all match. The server checks the values and
// answers naming the parameter: ErrMalformed for an unknown Type or
// Decision or a refused character, ErrInvalid for a bad time.
type EventFilter struct {
	// Type is an event type such as "key.created" or EventDecisionMade.
	Type string
	// KeyID matches the key an event is about or that caused it.
	KeyID string
	// AgentID, AgentRole, SessionID and SourceID match decisions by their
	// request (and agent changes by their agent).
	AgentID   string
	AgentRole string
	SessionID string
	SourceID  string
	// Decision is Allow or Deny.
	Decision string
	// From and To bound the event time, both inclusive; zero: unbounded.
	From, To time.Time
}

func (f EventFilter) query() url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"type": f.Type, "key_id": f.KeyID, "agent_id": f.AgentID,
		"agent_role": f.AgentRole, "session_id": f.SessionID, "source_id": f.SourceID, "decision": f.Decision} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.Format(time.RFC3339Nano))
	}
	return q
}

// EventQuery asks for one page of events.
type EventQuery struct {
	EventFilter
	// AfterSeq starts the page after this seq: 0 from the start, else the
	// NextAfterSeq of the previous page.
	AfterSeq uint64
	// Limit is the page size, 1 to MaxEventLimit. Default (0): the server's
	// default, 100, for Events; MaxEventLimit for AllEvents.
	Limit int
}

// Events returns one page of the events that match q, in seq order (GET
// /v1/audit/events; read).
func (c *Client) Events(ctx context.Context, q EventQuery) (wire.EventPage, error) {
	v := q.query()
	if q.AfterSeq > 0 {
		v.Set("after_seq", strconv.FormatUint(q.AfterSeq, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out wire.EventPage
	err := c.do(ctx, http.MethodGet, "/v1/audit/events", v, nil, &out)
	if err == nil && out.Events == nil {
		out.Events = []wire.Event{}
	}
	return out, err
}

// AllEvents calls fn for every event that matches q with seq > q.AfterSeq,
// in seq order, following NextAfterSeq page by page (q.Limit events per
// request). It holds one page at a time. It stops at the first error, of a
// request or of fn, and returns it; fn's error is returned as it is.
func (c *Client) AllEvents(ctx context.Context, q EventQuery, fn func(wire.Event) error) error {
	if q.Limit == 0 {
		q.Limit = MaxEventLimit
	}
	for {
		page, err := c.Events(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.NextAfterSeq == nil {
			return nil
		}
		if *page.NextAfterSeq <= q.AfterSeq {
			return fmt.Errorf("client: GET /v1/audit/events: cursor did not advance past %d", q.AfterSeq)
		}
		q.AfterSeq = *page.NextAfterSeq
	}
}

// ExportQuery selects what Export streams.
type ExportQuery struct {
	EventFilter
	// Tenant, for a superadmin key, exports that tenant's chain (GET
	// /v1/tenants/{id}/audit/export). Default (""): the key's own
	// tenant's.
	Tenant string
	// Format is ExportJSONL or ExportCSV. Default (""): ExportJSONL.
	Format string
	// FromSeq and ToSeq bound the seqs exported, both inclusive. Default
	// (0): from seq 1, to the head.
	FromSeq, ToSeq uint64
}

// Export streams every event that matches q, in seq order, to w and
// returns the number of bytes written (GET /v1/audit/export; read). It
// holds a fixed-size buffer, never the export. An unfiltered JSONL export
// (FromSeq and ToSeq may be set) verifies offline with custos verify
// --export or verify.Export.
//
// An error answer before the first byte is an *APIError and nothing is
// written. When the stream breaks after that (the server failed mid-way,
// the connection dropped, ctx was cancelled), Export returns an error and
// w holds a truncated export, which may still look like a valid shorter
// chain: discard it.
func (c *Client) Export(ctx context.Context, q ExportQuery, w io.Writer) (int64, error) {
	v := q.query()
	if q.Format != "" {
		v.Set("format", q.Format)
	}
	if q.FromSeq > 0 {
		v.Set("from_seq", strconv.FormatUint(q.FromSeq, 10))
	}
	if q.ToSeq > 0 {
		v.Set("to_seq", strconv.FormatUint(q.ToSeq, 10))
	}
	path := "/v1/audit/export"
	if q.Tenant != "" {
		path = "/v1/tenants/" + seg(q.Tenant) + "/audit/export"
	}
	resp, err := c.send(ctx, http.MethodGet, path, v)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, apiError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: GET %s: after %d bytes: %w", path, n, err)
	}
	return n, nil
}

// send sends a request without a body and returns the answer unread, for
// the streaming routes; do is the JSON counterpart. The caller closes the
// body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values) (*http.Response, error) {
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("User-Agent", c.ua)
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // drop the repeated method and URL
		}
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	return resp, nil
}
