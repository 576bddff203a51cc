package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRestartRestoresEveryKey changes keys, closes everything, reopens the
// same folder and expects identical key records and a valid chain.
func TestRestartRestoresEveryKey(t *testing.T) {
	t.Parallel()
	s := newStack(t)

	reader := s.mustCreate(t, `{"name":"reader","scope":"read","expires_days":30}`)
	agent := s.mustCreate(t, `{"name":"loan-agent-prod","scope":"evaluate","agent_id":"loan-agent"}`)
	admin2 := s.mustCreate(t, `{"name":"ops","scope":"admin","expires_at":"`+t0.Add(400*24*time.Hour).Format(time.RFC3339)+`"}`)
	s.clock.Advance(2 * time.Hour)
	require.True(t, works(t, s, reader["key"].(string)))

	// Rotate with grace (old still active), rotate without, revoke one.
	r := s.postJSON(t, "/v1/keys/"+agent["key_id"].(string)+"/rotate", admin2["key"].(string), `{"grace_seconds":86400}`)
	require.Equal(t, http.StatusCreated, r.status)
	rotated := r.object(t)
	r = s.postJSON(t, "/v1/keys/"+reader["key_id"].(string)+"/rotate", s.admin, ``)
	require.Equal(t, http.StatusCreated, r.status)
	reader2 := r.object(t)
	s.clock.Advance(time.Hour)
	require.Equal(t, http.StatusOK, s.del(t, "/v1/keys/"+admin2["key_id"].(string), s.admin).status)
	expired := s.mustCreate(t, `{"name":"soon","scope":"read","expires_at":"`+s.clock.Now().Add(time.Minute).Format(time.RFC3339)+`"}`)
	s.clock.Advance(10 * time.Minute)

	// The first request after a while records the admin key's use; the
	// listing after it shows it.
	require.Equal(t, http.StatusOK, s.get(t, "/v1/keys", s.admin).status)
	before := s.get(t, "/v1/keys", s.admin)
	require.Equal(t, http.StatusOK, before.status)

	s.restart()
	head := s.head(t)

	after := s.get(t, "/v1/keys", s.admin)
	require.Equal(t, http.StatusOK, after.status)
	assert.JSONEq(t, string(before.body), string(after.body))

	v := s.get(t, "/v1/audit/verify", s.admin)
	require.Equal(t, http.StatusOK, v.status)
	rep := v.object(t)
	assert.Equal(t, true, rep["valid"])
	assert.Nil(t, rep["broken_at"])
	assert.EqualValues(t, head, rep["total"])
	assert.EqualValues(t, head, rep["chained"])

	// Every key works, or not, as before the restart.
	for _, c := range []struct {
		key  any
		live bool
	}{
		{s.admin, true},
		{reader["key"], false}, // rotated without grace
		{reader2["key"], true},
		{admin2["key"], false}, // revoked
		{expired["key"], false},
	} {
		assert.Equal(t, c.live, works(t, s, c.key.(string)), "key %v", c.key.(string)[:10])
	}
	// The evaluate keys authenticate (403 for scope, not for the key).
	for _, k := range []any{agent["key"], rotated["key"]} {
		r := s.get(t, "/v1/keys", k.(string))
		require.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "Insufficient scope: GET /v1/keys requires read.", r.detail(t))
	}
}
