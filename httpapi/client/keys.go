package client

import (
	"context"
	"net/http"
	"time"
)

// Key is a key as the server shows it after creation: never the key itself
// or its hash.
type Key struct {
	KeyID     string    `json:"key_id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// IsActive is false once the key is revoked, expired, or rotated and
	// past its grace period.
	IsActive bool `json:"is_active"`
	// RevokedAt, RotatedFrom, RotatedTo and LastUsedAt are nil when unset.
	RevokedAt   *time.Time `json:"revoked_at"`
	RotatedFrom *string    `json:"rotated_from"`
	RotatedTo   *string    `json:"rotated_to"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	// AgentID is the agent an evaluate key is bound to, or "".
	AgentID string `json:"agent_id,omitempty"`
}

// CreateKeyRequest is the body of CreateKey. The server decides the rules
// (default expiry, at most one of ExpiresDays and ExpiresAt, AgentID only
// for evaluate keys) and answers ErrInvalid naming every broken field, or
// ErrMalformed when a field holds a refused character.
type CreateKeyRequest struct {
	Name string `json:"name"`
	// Scope is admin, read or evaluate.
	Scope string `json:"scope"`
	// ExpiresDays and ExpiresAt set the expiry; nil: the server's default.
	ExpiresDays *int       `json:"expires_days,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	AgentID     string     `json:"agent_id,omitempty"`
}

// CreatedKey answers CreateKey. Key is the plaintext key: shown this once.
type CreatedKey struct {
	KeyID     string    `json:"key_id"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IsActive  bool      `json:"is_active"`
	AgentID   string    `json:"agent_id,omitempty"`
}

// RotateKeyRequest is the body of RotateKey.
type RotateKeyRequest struct {
	// GraceSeconds keeps the old key valid this long after the rotation;
	// nil: the server's default.
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// RotatedKey answers RotateKey with the new key (plaintext shown once).
type RotatedKey struct {
	KeyID       string    `json:"key_id"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Scope       string    `json:"scope"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RotatedFrom string    `json:"rotated_from"`
	AgentID     string    `json:"agent_id,omitempty"`
}

// CreateKey creates a key (POST /v1/keys; admin).
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (CreatedKey, error) {
	var out CreatedKey
	err := c.do(ctx, http.MethodPost, "/v1/keys", nil, req, &out)
	return out, err
}

// ListKeys returns every key ever created, newest first (GET /v1/keys; read).
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out []Key
	err := c.do(ctx, http.MethodGet, "/v1/keys", nil, nil, &out)
	return out, err
}

// GetKey returns one key (GET /v1/keys/{id}; read): ErrNotFound when there
// is none.
func (c *Client) GetKey(ctx context.Context, keyID string) (Key, error) {
	var out Key
	err := c.do(ctx, http.MethodGet, "/v1/keys/"+seg(keyID), nil, nil, &out)
	return out, err
}

// RotateKey replaces a key by a new one with the same name, scope and
// agent (POST /v1/keys/{id}/rotate; admin).
func (c *Client) RotateKey(ctx context.Context, keyID string, req RotateKeyRequest) (RotatedKey, error) {
	var out RotatedKey
	err := c.do(ctx, http.MethodPost, "/v1/keys/"+seg(keyID)+"/rotate", nil, req, &out)
	return out, err
}

// RevokeKey revokes a key for good and returns it (DELETE /v1/keys/{id};
// admin): ErrConflict when it is already revoked or is the last admin key.
func (c *Client) RevokeKey(ctx context.Context, keyID string) (Key, error) {
	var out Key
	err := c.do(ctx, http.MethodDelete, "/v1/keys/"+seg(keyID), nil, nil, &out)
	return out, err
}
