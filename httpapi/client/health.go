package client

import (
	"context"
	"net/http"

	"github.com/custos-dev/custos/httpapi/wire"
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

// Cluster returns where each chain is sequenced and each node's progress,
// as the node asked sees it (GET /v1/cluster; read): ErrNotFound from a
// single node.
func (c *Client) Cluster(ctx context.Context) (wire.Cluster, error) {
	var out wire.Cluster
	err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, &out)
	return out, err
}
