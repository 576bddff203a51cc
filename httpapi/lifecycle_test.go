package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// at parses an RFC 3339 time from a response field.
func at(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "want a time string, got %#v", v)
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(s, "Z"), "times are UTC: %s", s)
	return tm
}

// works reports whether key authenticates for a read route.
func works(t *testing.T, s *stack, key string) bool {
	t.Helper()
	r := s.get(t, "/v1/keys", key)
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusForbidden:
		assert.Equal(t, "Invalid or revoked API key.", r.detail(t))
		return false
	}
	t.Fatalf("unexpected status %d: %s", r.status, r.body)
	return false
}

func TestKeyExpiresAtItsExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		lifetime time.Duration
	}{
		{"expires_days", `{"name":"short","scope":"read","expires_days":1}`, 24 * time.Hour},
		{"expires_at", `{"name":"short","scope":"read","expires_at":"` + t0.Add(90*time.Minute).Format(time.RFC3339) + `"}`, 90 * time.Minute},
		{"default", `{"name":"short","scope":"read"}`, 90 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			// An admin that outlives the bootstrap key (90 days).
			admin := s.mustCreate(t, `{"name":"long","scope":"admin","expires_days":3650}`)["key"].(string)
			m := s.mustCreate(t, tt.body)
			key, id := m["key"].(string), m["key_id"].(string)
			expires := at(t, m["expires_at"])
			require.Equal(t, t0.Add(tt.lifetime), expires)

			assert.True(t, works(t, s, key))
			s.clock.Set(expires.Add(-time.Nanosecond))
			assert.True(t, works(t, s, key), "still valid just before expires_at")
			s.clock.Set(expires)
			assert.False(t, works(t, s, key), "invalid at expires_at")

			g := s.get(t, "/v1/keys/"+id, admin)
			require.Equal(t, http.StatusOK, g.status)
			assert.Equal(t, false, g.object(t)["is_active"])
			// An expired key cannot be rotated.
			r := s.postJSON(t, "/v1/keys/"+id+"/rotate", admin, "")
			require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
			assert.Equal(t, "Key has expired.", r.detail(t))
		})
	}
}

func TestRotationKeepsLifetime(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	old := s.mustCreate(t, `{"name":"rot","scope":"evaluate","expires_days":10,"agent_id":"loan-agent"}`)
	oldID, oldKey := old["key_id"].(string), old["key"].(string)
	now := s.clock.Advance(3 * 24 * time.Hour)

	r := s.do(t, request{method: http.MethodPost, path: "/v1/keys/" + oldID + "/rotate", key: s.admin})
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	m := r.object(t)
	assert.ElementsMatch(t, []string{"key_id", "key", "name", "scope", "created_at", "expires_at", "rotated_from", "agent_id"}, mapKeys(m))
	assert.Equal(t, oldID, m["rotated_from"])
	assert.Equal(t, "rot", m["name"])
	assert.Equal(t, "evaluate", m["scope"])
	assert.Equal(t, "loan-agent", m["agent_id"])
	assert.Equal(t, now, at(t, m["created_at"]))
	assert.Equal(t, now.Add(10*24*time.Hour), at(t, m["expires_at"]), "same lifetime, counted from the rotation")
	assert.NotEqual(t, oldKey, m["key"])

	// Without grace the old key is dead when rotate returns.
	o := s.get(t, "/v1/keys/"+oldID, s.admin).object(t)
	assert.Equal(t, m["key_id"], o["rotated_to"])
	assert.Equal(t, now, at(t, o["revoked_at"]))
	assert.Equal(t, false, o["is_active"])
	n := s.get(t, "/v1/keys/"+m["key_id"].(string), s.admin).object(t)
	assert.Equal(t, oldID, n["rotated_from"])
	assert.Equal(t, true, n["is_active"])

	r = s.postJSON(t, "/v1/keys/"+oldID+"/rotate", s.admin, `{}`)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "Key is already revoked.", r.detail(t))
}

func TestRotationGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		body         string // create
		grace        string // rotate body
		wantRevokeIn time.Duration
	}{
		{"grace ends first", `{"name":"g","scope":"read","expires_days":30}`, `{"grace_seconds":600}`, 600 * time.Second},
		{"expiry ends first", `{"name":"g","scope":"read","expires_at":"` + t0.Add(100*time.Second).Format(time.RFC3339) + `"}`, `{"grace_seconds":3600}`, 100 * time.Second},
		{"zero grace", `{"name":"g","scope":"read"}`, `{"grace_seconds":0}`, 0},
		{"empty body", `{"name":"g","scope":"read"}`, ``, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			old := s.mustCreate(t, tt.body)
			oldID, oldKey := old["key_id"].(string), old["key"].(string)
			oldExpires := at(t, old["expires_at"])

			r := s.postJSON(t, "/v1/keys/"+oldID+"/rotate", s.admin, tt.grace)
			require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
			newKey := r.object(t)["key"].(string)
			newExpires := at(t, r.object(t)["expires_at"])
			// Lifetime is kept even for the short-lived key.
			assert.Equal(t, oldExpires.Sub(t0), newExpires.Sub(t0))
			assert.True(t, works(t, s, newKey))

			o := s.get(t, "/v1/keys/"+oldID, s.admin).object(t)
			revokedAt := at(t, o["revoked_at"])
			require.Equal(t, t0.Add(tt.wantRevokeIn), revokedAt)
			assert.False(t, revokedAt.After(oldExpires), "grace never outlives the key")

			if tt.wantRevokeIn > 0 {
				assert.True(t, works(t, s, oldKey), "old key works inside its grace")
				// A key in its grace window cannot be rotated again.
				r := s.postJSON(t, "/v1/keys/"+oldID+"/rotate", s.admin, "")
				require.Equal(t, http.StatusConflict, r.status)
				assert.Contains(t, r.detail(t), "already rotated")
				s.clock.Set(revokedAt.Add(-time.Nanosecond))
				assert.True(t, works(t, s, oldKey), "old key works until just before revoked_at")
			}
			s.clock.Set(revokedAt)
			assert.False(t, works(t, s, oldKey), "old key is rejected at revoked_at")
			assert.Equal(t, revokedAt.Before(newExpires), works(t, s, newKey))
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.mustCreate(t, `{"name":"victim","scope":"read"}`)
	id, key := m["key_id"].(string), m["key"].(string)
	require.True(t, works(t, s, key))
	s.clock.Advance(time.Hour)

	r := s.del(t, "/v1/keys/"+id, s.admin)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	d := r.object(t)
	assert.Equal(t, id, d["key_id"])
	assert.Equal(t, false, d["is_active"])
	assert.Equal(t, s.clock.Now(), at(t, d["revoked_at"]))
	// DELETE answers the same object as GET.
	g := s.get(t, "/v1/keys/"+id, s.admin)
	assert.JSONEq(t, string(r.body), string(g.body))

	// Revoke, then immediate use: rejected.
	assert.False(t, works(t, s, key))

	// Twice: conflict.
	r = s.del(t, "/v1/keys/"+id, s.admin)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "Key is already revoked.", r.detail(t))
}

func TestRevokeInsideGrace(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.mustCreate(t, `{"name":"g","scope":"read"}`)
	id, key := m["key_id"].(string), m["key"].(string)
	require.Equal(t, http.StatusCreated, s.postJSON(t, "/v1/keys/"+id+"/rotate", s.admin, `{"grace_seconds":3600}`).status)
	require.True(t, works(t, s, key))
	r := s.del(t, "/v1/keys/"+id, s.admin)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	assert.False(t, works(t, s, key), "revocation cuts the grace short at once")
}

func TestLastAdminCannotRevokeItself(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const reason = "Refusing to let the last active admin key revoke itself: that would lock every administrator out; create or keep another admin key first."

	r := s.del(t, "/v1/keys/"+s.adminID, s.admin)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, reason, r.detail(t))
	require.True(t, works(t, s, s.admin))

	// With a second admin the first may go; then the second is the last.
	second := s.mustCreate(t, `{"name":"second","scope":"admin"}`)
	r = s.del(t, "/v1/keys/"+s.adminID, s.admin)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	assert.False(t, works(t, s, s.admin))

	secondID, secondKey := second["key_id"].(string), second["key"].(string)
	r = s.del(t, "/v1/keys/"+secondID, secondKey)
	require.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, reason, r.detail(t))
	assert.True(t, works(t, s, secondKey))
}

// TestReadYourWrites checks that when rotate or revoke returns, every
// protected route already rejects the old key.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kill func(t *testing.T, s *stack, id string)
	}{
		{"rotate", func(t *testing.T, s *stack, id string) {
			require.Equal(t, http.StatusCreated, s.postJSON(t, "/v1/keys/"+id+"/rotate", s.admin, "").status)
		}},
		{"revoke", func(t *testing.T, s *stack, id string) {
			require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+id, s.admin).status)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			m := s.mustCreate(t, `{"name":"doomed","scope":"admin"}`)
			id, key := m["key_id"].(string), m["key"].(string)
			other, _ := s.createKey(t, "other", "evaluate", 0)
			require.True(t, works(t, s, key))
			tt.kill(t, s, id)
			for _, rt := range routeSpecs() {
				if rt.scope == "none" {
					continue
				}
				path := strings.ReplaceAll(rt.path, ":key_id", other)
				r := s.do(t, request{method: rt.method, path: path, key: key, body: rt.body})
				assert.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", rt.method, rt.path, r.body)
			}
		})
	}
}
