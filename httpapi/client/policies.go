package client

import (
	"context"
	"net/http"

	"github.com/custos-dev/custos/httpapi/wire"
)

// Policies are in AutoPIL's format, the server's own wire format (see
// wire.Policy): Version, CreatedAt and UpdatedAt are set by the server and
// ignored when sent.

// ListPolicies returns every current policy, sorted by name (GET
// /v1/policies; read).
func (c *Client) ListPolicies(ctx context.Context) ([]wire.Policy, error) {
	var out []wire.Policy
	err := c.do(ctx, http.MethodGet, "/v1/policies", nil, nil, &out)
	return out, err
}

// GetPolicy returns the policy with policy_id id (GET /v1/policies/{id};
// read): ErrNotFound when there is none.
func (c *Client) GetPolicy(ctx context.Context, id string) (wire.Policy, error) {
	var out wire.Policy
	err := c.do(ctx, http.MethodGet, "/v1/policies/"+seg(id), nil, nil, &out)
	return out, err
}

// CreatePolicy stores a new policy (POST /v1/policies; admin) and returns it
// with its policy_id (p's, or one the server mints), version 1 and times:
// ErrConflict when its agent_role, name or policy_id is taken.
func (c *Client) CreatePolicy(ctx context.Context, p wire.Policy) (wire.Policy, error) {
	var out wire.Policy
	err := c.do(ctx, http.MethodPost, "/v1/policies", nil, p, &out)
	return out, err
}

// UpdatePolicy replaces the policy with policy_id id by p (PUT
// /v1/policies/{id}; admin) and returns it with version + 1. p.PolicyID must
// be empty or id.
func (c *Client) UpdatePolicy(ctx context.Context, id string, p wire.Policy) (wire.Policy, error) {
	var out wire.Policy
	err := c.do(ctx, http.MethodPut, "/v1/policies/"+seg(id), nil, p, &out)
	return out, err
}

// DeletePolicy removes a policy and returns it as it was (DELETE
// /v1/policies/{id}; admin).
func (c *Client) DeletePolicy(ctx context.Context, id string) (wire.Policy, error) {
	var out wire.Policy
	err := c.do(ctx, http.MethodDelete, "/v1/policies/"+seg(id), nil, nil, &out)
	return out, err
}
