package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/keys"
)

// createKeyRequest is the body of POST /v1/keys. The domain decides the
// rules (expiry defaults, either expires_days or expires_at, agent_id only
// for evaluate keys); this type only carries the wire shape.
type createKeyRequest struct {
	Name        string  `json:"name"`
	Scope       string  `json:"scope"`
	ExpiresDays *int    `json:"expires_days"`
	ExpiresAt   *string `json:"expires_at"` // RFC 3339
	AgentID     string  `json:"agent_id"`
}

func (r createKeyRequest) command() (keys.CreateCommand, error) {
	cmd := keys.CreateCommand{Name: r.Name, Scope: r.Scope, ExpiresDays: r.ExpiresDays, AgentID: r.AgentID}
	if r.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339, *r.ExpiresAt)
		if err != nil {
			return keys.CreateCommand{}, &keys.ValidationError{Field: "expires_at",
				Problem: "must be an RFC 3339 time such as 2030-01-31T12:00:00Z"}
		}
		cmd.ExpiresAt = &at
	}
	return cmd, nil
}

// rotateKeyRequest is the optional body of POST /v1/keys/:key_id/rotate.
type rotateKeyRequest struct {
	GraceSeconds *int `json:"grace_seconds"`
}

// keyResponse is one key as GET, list and DELETE show it: never the key or
// its hash. Absent times and ids are null.
type keyResponse struct {
	KeyID       string     `json:"key_id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	IsActive    bool       `json:"is_active"`
	RevokedAt   *time.Time `json:"revoked_at"`
	RotatedFrom *string    `json:"rotated_from"`
	RotatedTo   *string    `json:"rotated_to"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	AgentID     string     `json:"agent_id,omitempty"`
}

func newKeyResponse(k keys.Key, now time.Time) keyResponse {
	return keyResponse{
		KeyID:       k.KeyID,
		Name:        k.Name,
		Scope:       string(k.Scope),
		Prefix:      k.Prefix,
		CreatedAt:   k.CreatedAt.UTC(),
		ExpiresAt:   k.ExpiresAt.UTC(),
		IsActive:    k.IsActive(now),
		RevokedAt:   utcOrNil(k.RevokedAt),
		RotatedFrom: stringOrNil(k.RotatedFrom),
		RotatedTo:   stringOrNil(k.RotatedTo),
		LastUsedAt:  utcOrNil(k.LastUsedAt),
		AgentID:     k.AgentID,
	}
}

// createdKeyResponse answers POST /v1/keys: the only time the key is shown.
type createdKeyResponse struct {
	KeyID     string    `json:"key_id"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IsActive  bool      `json:"is_active"`
	AgentID   string    `json:"agent_id,omitempty"`
}

// rotatedKeyResponse answers POST /v1/keys/:key_id/rotate with the new key.
type rotatedKeyResponse struct {
	KeyID       string    `json:"key_id"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Scope       string    `json:"scope"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RotatedFrom string    `json:"rotated_from"`
	AgentID     string    `json:"agent_id,omitempty"`
}

// createKey handles POST /v1/keys.
func (s *Server) createKey(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	cmd, err := req.command()
	if err != nil {
		return err
	}
	created, plaintext, _, err := s.cfg.Ledger.CreateKey(c.Request().Context(), by, cmd)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, createdKeyResponse{
		KeyID:     created.KeyID,
		Key:       plaintext,
		Name:      created.Name,
		Scope:     string(created.Scope),
		CreatedAt: created.CreatedAt.UTC(),
		ExpiresAt: created.ExpiresAt.UTC(),
		IsActive:  true,
		AgentID:   created.AgentID,
	})
}

// listKeys handles GET /v1/keys: a bare array, newest first.
func (s *Server) listKeys(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	all, now := s.cfg.Ledger.Keys(), s.cfg.Ledger.Now()
	if past, at, err := s.asOf(c); err != nil {
		return err
	} else if past != nil {
		all, now = past.Keys.List(), at
	}
	out := make([]keyResponse, len(all))
	for i, k := range all {
		out[i] = newKeyResponse(k, now)
	}
	return c.JSON(http.StatusOK, out)
}

// getKey handles GET /v1/keys/:key_id.
func (s *Server) getKey(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	past, at, err := s.asOf(c)
	if err != nil {
		return err
	}
	if past != nil {
		k, ok := past.Keys.ByID(c.Param("key_id"))
		if !ok {
			return keys.ErrNotFound
		}
		return c.JSON(http.StatusOK, newKeyResponse(k, at))
	}
	k, err := s.cfg.Ledger.Key(c.Param("key_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newKeyResponse(k, s.cfg.Ledger.Now()))
}

// rotateKey handles POST /v1/keys/:key_id/rotate.
func (s *Server) rotateKey(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req rotateKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	rotated, plaintext, err := s.cfg.Ledger.RotateKey(c.Request().Context(), by,
		keys.RotateCommand{KeyID: c.Param("key_id"), GraceSeconds: req.GraceSeconds})
	if err != nil {
		return err
	}
	n := rotated.NewKey
	noStore(c)
	return c.JSON(http.StatusCreated, rotatedKeyResponse{
		KeyID:       n.KeyID,
		Key:         plaintext,
		Name:        n.Name,
		Scope:       string(n.Scope),
		CreatedAt:   n.CreatedAt.UTC(),
		ExpiresAt:   n.ExpiresAt.UTC(),
		RotatedFrom: n.RotatedFrom,
		AgentID:     n.AgentID,
	})
}

// revokeKey handles DELETE /v1/keys/:key_id.
func (s *Server) revokeKey(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	k, err := s.cfg.Ledger.RevokeKey(c.Request().Context(), by, by, c.Param("key_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newKeyResponse(k, s.cfg.Ledger.Now()))
}

// noStore keeps responses that carry a plaintext key out of caches.
func noStore(c echo.Context) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
}

func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
