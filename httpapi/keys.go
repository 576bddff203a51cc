package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/wire"
)

// createKeyCommand turns the body of POST /v1/keys into the domain's
// command. The domain decides the rules; only expires_at is parsed here.
func createKeyCommand(r wire.CreateKeyRequest) (keys.CreateCommand, error) {
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

// newKeyResponse shows k as it is at now: never the key or its hash.
func newKeyResponse(k keys.Key, now time.Time) wire.Key {
	return wire.Key{
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

// createKey handles POST /v1/keys.
func (s *Server) createKey(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req wire.CreateKeyRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	cmd, err := createKeyCommand(req)
	if err != nil {
		return err
	}
	created, plaintext, _, err := tenantOf(c).Ledger.CreateKey(c.Request().Context(), by, cmd)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, createdKeyOf(created, plaintext))
}

// createdKeyOf is the answer for a new key, its plaintext shown once.
func createdKeyOf(created keys.KeyCreated, plaintext string) wire.CreatedKey {
	return wire.CreatedKey{
		KeyID:     created.KeyID,
		Key:       plaintext,
		Name:      created.Name,
		Scope:     string(created.Scope),
		CreatedAt: created.CreatedAt.UTC(),
		ExpiresAt: created.ExpiresAt.UTC(),
		IsActive:  true,
		AgentID:   created.AgentID,
	}
}

// listKeys handles GET /v1/keys: a bare array, newest first.
func (s *Server) listKeys(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	all, now := tenantOf(c).Ledger.Keys(), tenantOf(c).Ledger.Now()
	if past, at, err := s.asOf(c); err != nil {
		return err
	} else if past != nil {
		all, now = past.Keys.List(), at
	}
	out := make([]wire.Key, len(all))
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
	k, err := tenantOf(c).Ledger.Key(c.Param("key_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newKeyResponse(k, tenantOf(c).Ledger.Now()))
}

// rotateKey handles POST /v1/keys/:key_id/rotate.
func (s *Server) rotateKey(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var req wire.RotateKeyRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	rotated, plaintext, err := tenantOf(c).Ledger.RotateKey(c.Request().Context(), by,
		keys.RotateCommand{KeyID: c.Param("key_id"), GraceSeconds: req.GraceSeconds})
	if err != nil {
		return err
	}
	n := rotated.NewKey
	noStore(c)
	return c.JSON(http.StatusCreated, wire.RotatedKey{
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
	k, err := tenantOf(c).Ledger.RevokeKey(c.Request().Context(), by, by, c.Param("key_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newKeyResponse(k, tenantOf(c).Ledger.Now()))
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
