// Package httpapi is the HTTP layer of custos (echo/v4): health probes and
// metrics, evaluate, keys, policies, agents, the audit reads (events,
// sessions, exports, key history, point in time, verify) and online
// backups. Handlers are thin: decode, call the write side
// (projections/writeside.Ledger) or the read side
// (projections/readside.Index), encode.
//
// # Routes and scopes
//
// Every route is listed once in the route table (routes.go) with the scope it
// requires: admin > read > evaluate (keys.Scope.Allows), or noAuth for the
// probes. One middleware enforces the table for every request; New fails when
// a registered route has no table entry or an entry has no route, so a route
// can never be served without a decision about who may call it. A request
// that matches no entry never reaches a handler: 404, or 405 with an Allow
// header when the path exists with other methods (OPTIONS and HEAD included).
//
// Clients authenticate with the X-API-Key header. No header: 401. A key that
// is unknown, malformed, has a bad checksum, has expired or is revoked: 403
// with one body for all of them. A valid key without the scope: 403 naming
// method, route and the scope required. Authentication goes through
// writeside.Ledger.Authenticate, which only reads; the check that counts
// runs again inside Ledger.Write at the change's position in the log, so a
// request that raced its key's revocation gets the same 403 and appends
// nothing. After a successful
// request (status below 400) the middleware calls Ledger.RecordUse, which
// appends a key.used at most once a minute per key; a rejected request
// appends nothing.
//
// # Bodies
//
// Every request and response body is a type of package wire, which the Go
// client (httpapi/client) uses too; handlers convert between wire and
// domain types and nothing else.
//
// Request bodies are JSON objects sent as application/json (else 415), at
// most 64 KiB (else 413), with exactly the documented field names, each at
// most once, and nothing after the object (else 400 naming the problem and
// field). An empty body means "no fields". Domain rules answer 422 naming
// every broken field. Times are RFC 3339 in UTC.
//
// # Errors
//
// Handlers return errors; one echo HTTPErrorHandler maps them with errors.Is
// and errors.As (never a type assertion on the returned error, so wrapping is
// safe) to a status and a body that is always exactly {"detail": "..."}:
// keys.ErrNotFound 404, keys.ErrConflict 409, *keys.ValidationError 422,
// keys.ErrInvalidKey 403, eventstore.ErrStoreFailed and ErrClosed 503,
// *echo.HTTPError its own code, anything else 500 with a generic detail (the
// real error is logged).
//
// # Secrets
//
// A plaintext key appears only in the one response that creates it (create
// and rotate answer with Cache-Control: no-store). Neither the X-API-Key
// header nor a key or its hash is ever logged.
//
// # Lifetime and concurrency
//
// A Server is safe for concurrent use and owns nothing that needs closing:
// the caller stops the http.Server serving Handler first (Shutdown), then
// the Ledger, then the store (see projections).
package httpapi
