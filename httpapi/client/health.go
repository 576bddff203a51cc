package client

import (
	"context"
	"net/http"
)

// Health checks that the server is alive (GET /healthz; no key needed).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready checks that the server may take traffic (GET /readyz; no key
// needed): ErrUnavailable with the reason when it may not.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}
