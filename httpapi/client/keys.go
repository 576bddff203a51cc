package client

import (
	"context"
	"net/http"

	"github.com/custos-dev/custos/httpapi/wire"
)

// CreateKey creates a key (POST /v1/keys; admin) and returns it with its
// plaintext, shown this once. The server answers ErrInvalid naming every
// broken field, or ErrMalformed when a field holds a refused character.
func (c *Client) CreateKey(ctx context.Context, req wire.CreateKeyRequest) (wire.CreatedKey, error) {
	var out wire.CreatedKey
	err := c.do(ctx, http.MethodPost, "/v1/keys", nil, req, &out)
	return out, err
}

// ListKeys returns every key ever created, newest first (GET /v1/keys; read).
func (c *Client) ListKeys(ctx context.Context) ([]wire.Key, error) {
	var out []wire.Key
	err := c.do(ctx, http.MethodGet, "/v1/keys", nil, nil, &out)
	return out, err
}

// GetKey returns one key (GET /v1/keys/{id}; read): ErrNotFound when there
// is none.
func (c *Client) GetKey(ctx context.Context, keyID string) (wire.Key, error) {
	var out wire.Key
	err := c.do(ctx, http.MethodGet, "/v1/keys/"+seg(keyID), nil, nil, &out)
	return out, err
}

// RotateKey replaces a key by a new one with the same name, scope and
// agent (POST /v1/keys/{id}/rotate; admin).
func (c *Client) RotateKey(ctx context.Context, keyID string, req wire.RotateKeyRequest) (wire.RotatedKey, error) {
	var out wire.RotatedKey
	err := c.do(ctx, http.MethodPost, "/v1/keys/"+seg(keyID)+"/rotate", nil, req, &out)
	return out, err
}

// RevokeKey revokes a key for good and returns it (DELETE /v1/keys/{id};
// admin): ErrConflict when it is already revoked or is the last admin key.
func (c *Client) RevokeKey(ctx context.Context, keyID string) (wire.Key, error) {
	var out wire.Key
	err := c.do(ctx, http.MethodDelete, "/v1/keys/"+seg(keyID), nil, nil, &out)
	return out, err
}
