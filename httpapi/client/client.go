// Package client is a typed Go client for the custos HTTP API: keys,
// policies, agents, evaluate, audit, backups and the probes.
//
// Request and answer bodies are the types of package wire, the same types
// the server reads and writes, so the client cannot drift from the server.
// Importing client pulls in neither the HTTP framework nor the store.
//
// A Client is safe for concurrent use by multiple goroutines and holds no
// state besides its configuration; it owns nothing that needs closing (the
// *http.Client it uses, given with WithHTTPClient or http.DefaultClient,
// belongs to the caller). Every call takes a context first and sends one
// request.
//
// Every answer with a status outside 2xx becomes an *APIError carrying the
// status and the server's {"detail": "..."}. Match classes of answers with
// errors.Is and the sentinels (ErrNotFound, ErrConflict, ...), or read the
// fields with errors.As. Transport failures (refused connection, timeout,
// cancelled context) are returned wrapped, never as an *APIError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Sentinels that an *APIError matches with errors.Is, by status.
var (
	// ErrUnauthorized matches 401: no API key was sent.
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrForbidden matches 403: the key is invalid, expired or revoked, or
	// lacks the scope the route needs.
	ErrForbidden = errors.New("client: forbidden")
	// ErrNotFound matches 404.
	ErrNotFound = errors.New("client: not found")
	// ErrConflict matches 409: the change contradicts the current state
	// (key already revoked, policy name taken, folder exists...).
	ErrConflict = errors.New("client: conflict")
	// ErrMalformed matches 400: the request is malformed (a body that is
	// not one JSON object of the documented fields or not valid UTF-8, a
	// refused character in an identifier, an unknown, repeated or
	// out-of-enum query parameter); the detail names the problem.
	ErrMalformed = errors.New("client: malformed request")
	// ErrInvalid matches 422: the request is well formed but breaks a rule;
	// the detail names every field.
	ErrInvalid = errors.New("client: invalid request")
	// ErrUnavailable matches 503: the audit log is unavailable or the
	// server is not ready.
	ErrUnavailable = errors.New("client: service unavailable")
)

// APIError is an answer of the server with a status outside 2xx.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Detail is the server's explanation (the detail of its error body), or
	// the status text when the body has none.
	Detail string
}

// Error returns, e.g., "client: 409 Conflict: Key is already revoked.".
func (e *APIError) Error() string {
	return fmt.Sprintf("client: %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// Is reports whether target is the sentinel for e's status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrMalformed:
		return e.Status == http.StatusBadRequest
	case ErrInvalid:
		return e.Status == http.StatusUnprocessableEntity
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// DefaultUserAgent is the User-Agent header of a Client without
// WithUserAgent.
const DefaultUserAgent = "custos-go-client"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client calls one custos server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	apiKey string
	hc     *http.Client
	ua     string
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sets the key sent as X-API-Key with every request. Default:
// none, which only the probes accept.
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithHTTPClient sets the http.Client requests go through (timeouts, TLS,
// proxies). Default http.DefaultClient. A nil hc keeps the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header. Default DefaultUserAgent.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// New returns a Client for the server at baseURL, e.g.
// "http://127.0.0.1:8080"; a path in baseURL prefixes every route. It fails
// when baseURL is not an absolute http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: must not have a query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, hc: http.DefaultClient, ua: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server's URL as New was given it, without a trailing
// slash.
func (c *Client) BaseURL() string { return c.base.String() }

// do sends one request. in, if not nil, is sent as JSON; a 2xx answer is
// decoded into out when out is not nil. path must already be escaped.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.doHeader(ctx, method, path, query, nil, in, out)
}

// doHeader is do with extra request headers.
func (c *Client) doHeader(ctx context.Context, method, path string, query url.Values, header http.Header, in, out any) error {
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // drop the repeated method and URL
		}
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// apiError reads an error answer: the detail of {"detail": "..."}, else the
// body's text, else the status text.
func apiError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var body struct { // wire.ErrorBody, telling an absent detail from ""
		Detail *string `json:"detail"`
	}
	switch {
	case json.Unmarshal(b, &body) == nil && body.Detail != nil:
		e.Detail = *body.Detail
	case len(bytes.TrimSpace(b)) > 0 && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")):
		e.Detail = strings.TrimSpace(string(b))
	default:
		e.Detail = http.StatusText(resp.StatusCode)
	}
	return e
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
