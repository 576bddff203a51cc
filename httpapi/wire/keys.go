package wire

import "time"

// CreateKeyRequest is the body of POST /v1/keys. The server decides the
// rules (default expiry, at most one of expires_days and expires_at,
// agent_id only for evaluate keys) and answers 422 naming every broken
// field.
type CreateKeyRequest struct {
	Name string `json:"name"`
	// Scope is admin, read or evaluate.
	Scope string `json:"scope"`
	// ExpiresDays and ExpiresAt (RFC 3339, e.g. 2030-01-31T12:00:00Z) set
	// the expiry; absent: the server's default. A malformed expires_at is a
	// 422, so it travels as a string.
	ExpiresDays *int    `json:"expires_days,omitempty"`
	ExpiresAt   *string `json:"expires_at,omitempty"`
	// AgentID binds an evaluate key to one agent.
	AgentID string `json:"agent_id,omitempty"`
}

// RotateKeyRequest is the optional body of POST /v1/keys/{key_id}/rotate.
type RotateKeyRequest struct {
	// GraceSeconds keeps the old key valid this long after the rotation;
	// absent: the server's default.
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// Key is one key as GET /v1/keys (a bare array, newest first), GET and
// DELETE /v1/keys/{key_id} answer it: never the key itself or its hash.
// Every field is present; unset times and ids are null, agent_id is left
// out when the key is bound to no agent.
type Key struct {
	KeyID     string    `json:"key_id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// IsActive is false once the key is revoked, expired, or rotated and
	// past its grace period, at the instant the answer describes.
	IsActive    bool       `json:"is_active"`
	RevokedAt   *time.Time `json:"revoked_at"`
	RotatedFrom *string    `json:"rotated_from"`
	RotatedTo   *string    `json:"rotated_to"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	// AgentID is the agent an evaluate key is bound to.
	AgentID string `json:"agent_id,omitempty"`
}

// CreatedKey answers POST /v1/keys with 201. Key is the plaintext key: the
// only time it is shown (the answer has Cache-Control: no-store).
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

// RotatedKey answers POST /v1/keys/{key_id}/rotate with 201: the new key,
// its plaintext shown this once.
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

// KeyFact is one line of GET /v1/keys/history?format=jsonl: one lifecycle
// fact of one key, in time order. The unset ids and seq are null.
type KeyFact struct {
	Time         time.Time `json:"time"`
	Fact         string    `json:"fact"`
	KeyID        string    `json:"key_id"`
	Name         string    `json:"name"`
	Scope        string    `json:"scope"`
	Actor        string    `json:"actor"`
	RelatedKeyID *string   `json:"related_key_id"`
	Seq          *uint64   `json:"seq"`
	EventID      *string   `json:"event_id"`
}
