package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/httpapi"
)

// TestRejectedRequestsAppendNothing sends bad create, rotate and revoke
// requests and checks status, detail and that the chain head and the key
// table do not move.
func TestRejectedRequestsAppendNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// Use the admin key once (records its key.used) and make it durable with
	// a synchronous write behind it, so only the requests below could move
	// the head.
	require.Equal(t, http.StatusOK, s.get(t, "/v1/keys", s.admin).status)
	target, _ := s.createKey(t, "target", "read", 0)
	_, fresh := s.createKey(t, "never-used", "read", 0)
	before := s.head(t)

	// A key's first request, rejected, records no use either.
	r := s.postJSON(t, "/v1/keys", fresh, `{"name":"x","scope":"read"}`)
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, before, s.head(t), "a rejected request records no key.used")
	nKeys := len(s.ledger.Keys())

	rotate := "/v1/keys/" + target + "/rotate"
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	long := strings.Repeat("x", 129)
	// A body of exactly the limit is read and judged on its content.
	exact := `{"scope":"read","name":"` + strings.Repeat("n", httpapi.MaxBodyBytes-len(`{"scope":"read","name":""}`)) + `"}`
	require.Len(t, exact, httpapi.MaxBodyBytes)
	over := `{"scope":"read","name":"` + strings.Repeat("n", 65<<10) + `"}`

	tests := []struct {
		name   string
		req    request
		status int
		want   []string // substrings of the detail
	}{
		// 422: domain rules, every broken field named.
		{"empty name", request{body: `{"name":"","scope":"read"}`}, 422, []string{"name must not be empty"}},
		{"blank name", request{body: `{"name":"   ","scope":"read"}`}, 422, []string{"name must not be empty"}},
		{"name too long", request{body: `{"name":"` + long + `","scope":"read"}`}, 422, []string{"name must be at most 128 characters"}},
		// 400: a refused character names its field like a 422 does.
		{"name with control character", request{body: `{"name":"a\u0007b","scope":"read"}`}, 400, []string{"name must not contain control characters (U+0007 at byte 1)"}},
		{"missing scope", request{body: `{"name":"a"}`}, 422, []string{"scope must be one of admin, read, evaluate"}},
		{"unknown scope", request{body: `{"name":"a","scope":"root"}`}, 422, []string{"scope must be one of admin, read, evaluate"}},
		{"expires_days zero", request{body: `{"name":"a","scope":"read","expires_days":0}`}, 422, []string{"expires_days must be a whole number of days from 1 to 3650"}},
		{"expires_days negative", request{body: `{"name":"a","scope":"read","expires_days":-5}`}, 422, []string{"expires_days"}},
		{"expires_days too many", request{body: `{"name":"a","scope":"read","expires_days":3651}`}, 422, []string{"expires_days must be a whole number of days from 1 to 3650"}},
		{"expires_at in the past", request{body: `{"name":"a","scope":"read","expires_at":"` + at(-time.Hour) + `"}`}, 422, []string{"expires_at must be in the future"}},
		{"expires_at now", request{body: `{"name":"a","scope":"read","expires_at":"` + at(0) + `"}`}, 422, []string{"expires_at must be in the future"}},
		{"expires_at too far", request{body: `{"name":"a","scope":"read","expires_at":"` + at(3651*24*time.Hour) + `"}`}, 422, []string{"expires_at must be at most 3650 days ahead"}},
		{"expires_at not RFC 3339", request{body: `{"name":"a","scope":"read","expires_at":"next tuesday"}`}, 422, []string{"expires_at must be an RFC 3339 time"}},
		{"both expiry fields", request{body: `{"name":"a","scope":"read","expires_days":3,"expires_at":"` + at(time.Hour) + `"}`}, 422, []string{"expires_at give either expires_days or expires_at, not both"}},
		{"agent_id on a read key", request{body: `{"name":"a","scope":"read","agent_id":"loan-agent"}`}, 422, []string{"agent_id is only allowed with scope evaluate"}},
		{"agent_id too long", request{body: `{"name":"a","scope":"evaluate","agent_id":"` + long + `"}`}, 422, []string{"agent_id must be at most 128 characters"}},
		{"every field wrong", request{body: `{"name":"","scope":"x","expires_days":0,"agent_id":"a\u0001"}`}, 400,
			[]string{"name must not be empty", "scope must be one of", "expires_days must be", "agent_id must not contain control characters"}},
		{"empty body", request{}, 422, []string{"name must not be empty", "scope must be one of"}},
		{"empty object", request{body: `{}`}, 422, []string{"name must not be empty", "scope must be one of"}},
		{"json with charset is accepted", request{body: `{"name":"","scope":"read"}`, contentType: "application/json; charset=utf-8"}, 422, []string{"name must not be empty"}},
		{"body of exactly 64 KiB is read", request{body: exact}, 422, []string{"name must be at most 128 characters"}},

		// 400: the JSON itself is wrong.
		{"unknown field", request{body: `{"name":"a","scope":"read","admin":true}`}, 400, []string{`Unknown field "admin"`}},
		{"field name in another case", request{body: `{"NAME":"a","scope":"read"}`}, 400, []string{`Unknown field "NAME"`}},
		{"field given twice", request{body: `{"name":"a","scope":"read","scope":"admin"}`}, 400, []string{`Field "scope" is given more than once`}},
		{"name is a number", request{body: `{"name":5,"scope":"read"}`}, 400, []string{`Field "name" must be a string, not a number`}},
		{"expires_days is a string", request{body: `{"name":"a","scope":"read","expires_days":"90"}`}, 400, []string{`Field "expires_days" must be a whole number`}},
		{"expires_days is a fraction", request{body: `{"name":"a","scope":"read","expires_days":1.5}`}, 400, []string{`Field "expires_days" must be a whole number`}},
		{"expires_at is a number", request{body: `{"name":"a","scope":"read","expires_at":17}`}, 400, []string{`Field "expires_at" must be a string`}},
		{"truncated JSON", request{body: `{"name":"a",`}, 400, []string{"Malformed JSON", "unexpected end"}},
		{"not JSON", request{body: `{name: "a"}`}, 400, []string{"Malformed JSON at byte 2"}},
		{"trailing data", request{body: `{"name":"a","scope":"read"} {"x":1}`}, 400, []string{"unexpected data after the JSON object"}},
		{"array instead of object", request{body: `["a"]`}, 400, []string{"must be a JSON object, not an array"}},
		{"invalid UTF-8 in a value", request{body: "{\"name\":\"a\xffb\",\"scope\":\"read\"}"}, 400, []string{"Invalid request: name must be valid UTF-8 (byte 0xFF at byte 10 of the body)."}},
		{"invalid UTF-8 in a name", request{body: "{\"n\xc3\":\"a\",\"scope\":\"read\"}"}, 400, []string{"must be valid UTF-8: byte 0xC3 at byte 3"}},
		{"encoded surrogate", request{body: "{\"name\":\"\xed\xa0\x80\",\"scope\":\"read\"}"}, 400, []string{"must be valid UTF-8"}},
		{"lone surrogate escape", request{body: `{"name":"a\ud800","scope":"read"}`}, 400, []string{`name must be valid Unicode (\ud800 at byte 10 of the body is half of a surrogate pair)`}},
		{"lone low surrogate escape", request{body: `{"name":"\udc00x","scope":"read"}`}, 400, []string{`\udc00 at byte 9`}},

		// 413 and 415.
		{"65 KiB body", request{body: over}, 413, []string{"Request body too large"}},
		{"65 KiB chunked body", request{reader: strings.NewReader(over)}, 413, []string{"Request body too large"}},
		{"text/plain", request{body: `{"name":"a","scope":"read"}`, contentType: "text/plain"}, 415, []string{"Content-Type must be application/json"}},
		{"form", request{body: `name=a&scope=read`, contentType: "application/x-www-form-urlencoded"}, 415, []string{"Content-Type must be application/json"}},
		{"no content type", request{body: `{"name":"a","scope":"read"}`, noType: true}, 415, []string{"Content-Type must be application/json"}},

		// Rotate and revoke.
		{"rotate: negative grace", request{path: rotate, body: `{"grace_seconds":-1}`}, 422, []string{"grace_seconds must be a whole number of seconds from 0 to 604800"}},
		{"rotate: grace over 7 days", request{path: rotate, body: `{"grace_seconds":604801}`}, 422, []string{"grace_seconds must be a whole number of seconds from 0 to 604800"}},
		{"rotate: grace is a string", request{path: rotate, body: `{"grace_seconds":"60"}`}, 400, []string{`Field "grace_seconds" must be a whole number`}},
		{"rotate: unknown field", request{path: rotate, body: `{"grace":60}`}, 400, []string{`Unknown field "grace"`}},
		{"rotate: field in another case", request{path: rotate, body: `{"Grace_Seconds":60}`}, 400, []string{`Unknown field "Grace_Seconds"`}},
		{"rotate: text/plain", request{path: rotate, body: `{}`, contentType: "text/plain"}, 415, []string{"Content-Type must be application/json"}},
		{"rotate: unknown key", request{path: "/v1/keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV/rotate"}, 404, []string{"Key not found."}},
		{"revoke: unknown key", request{method: http.MethodDelete, path: "/v1/keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 404, []string{"Key not found."}},
		{"get: unknown key", request{method: http.MethodGet, path: "/v1/keys/nope"}, 404, []string{"Key not found."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req
			if req.method == "" {
				req.method = http.MethodPost
			}
			if req.path == "" {
				req.path = "/v1/keys"
			}
			req.key = s.admin
			r := s.do(t, req)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			d := r.detail(t)
			for _, w := range tt.want {
				assert.Contains(t, d, w)
			}
			assert.Equal(t, before, s.head(t), "a rejected request must append nothing")
			assert.Len(t, s.ledger.Keys(), nKeys)
		})
	}
	t.Cleanup(func() {
		k, err := s.ledger.Key(target)
		require.NoError(t, err)
		assert.Empty(t, k.RotatedTo)
		assert.Nil(t, k.RevokedAt)
	})
}

// TestCreateKeyResponse checks the 201 bodies of create (with each way of
// setting the expiry) and the list and get shapes.
func TestCreateKeyResponse(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tests := []struct {
		name      string
		body      string
		expiresAt time.Time
		agent     string
	}{
		{"default 90 days", `{"name":"default","scope":"read"}`, t0.Add(90 * 24 * time.Hour), ""},
		{"expires_days", `{"name":"loan-agent-prod","scope":"evaluate","expires_days":30,"agent_id":"loan-agent"}`, t0.Add(30 * 24 * time.Hour), "loan-agent"},
		{"expires_at", `{"name":"at","scope":"admin","expires_at":"` + t0.Add(36*time.Hour).Format(time.RFC3339) + `"}`, t0.Add(36 * time.Hour), ""},
		{"expires_at with offset", `{"name":"offset","scope":"admin","expires_at":"` + t0.Add(36*time.Hour).In(time.FixedZone("x", 5*3600)).Format(time.RFC3339) + `"}`, t0.Add(36 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.postJSON(t, "/v1/keys", s.admin, tt.body)
			require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
			m := r.object(t)
			fields := []string{"key_id", "key", "name", "scope", "created_at", "expires_at", "is_active"}
			if tt.agent != "" {
				fields = append(fields, "agent_id")
				assert.Equal(t, tt.agent, m["agent_id"])
			}
			assert.ElementsMatch(t, fields, mapKeys(m))
			assert.Regexp(t, keyPattern, m["key"])
			assert.Equal(t, true, m["is_active"])
			assert.Equal(t, t0.Format(time.RFC3339), m["created_at"])
			assert.Equal(t, tt.expiresAt.Format(time.RFC3339), m["expires_at"])

			// GET shows the record without the key.
			g := s.get(t, "/v1/keys/"+m["key_id"].(string), s.admin)
			require.Equal(t, http.StatusOK, g.status)
			gm := g.object(t)
			want := []string{"key_id", "name", "scope", "prefix", "created_at", "expires_at", "is_active",
				"revoked_at", "rotated_from", "rotated_to", "last_used_at"}
			if tt.agent != "" {
				want = append(want, "agent_id")
			}
			assert.ElementsMatch(t, want, mapKeys(gm))
			assert.Nil(t, gm["revoked_at"])
			assert.Nil(t, gm["rotated_from"])
			assert.Nil(t, gm["rotated_to"])
			assert.Nil(t, gm["last_used_at"])
			assert.Equal(t, m["key"].(string)[:10], gm["prefix"])
			assert.NotContains(t, string(g.body), m["key"])
		})
	}
}

// TestListKeys checks that GET /v1/keys is a bare array, newest first,
// without keys or hashes.
func TestListKeys(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	var created []map[string]any
	for i := range 3 {
		s.clock.Advance(time.Minute)
		created = append(created, s.mustCreate(t, fmt.Sprintf(`{"name":"k%d","scope":"read"}`, i)))
	}
	r := s.get(t, "/v1/keys", s.admin)
	require.Equal(t, http.StatusOK, r.status)
	var list []map[string]any
	require.NoError(t, jsonUnmarshal(r.body, &list))
	require.Len(t, list, 4)
	assert.Equal(t, created[2]["key_id"], list[0]["key_id"])
	assert.Equal(t, created[1]["key_id"], list[1]["key_id"])
	assert.Equal(t, created[0]["key_id"], list[2]["key_id"])
	assert.Equal(t, s.adminID, list[3]["key_id"])
	for i, k := range list {
		assert.NotContains(t, k, "key")
		assert.NotContains(t, k, "key_hash")
		assert.Equal(t, true, k["is_active"], "key %d", i)
	}
	for _, c := range created {
		assert.NotContains(t, string(r.body), c["key"])
	}
	// The admin key's use shows up as last_used_at.
	assert.Equal(t, s.clock.Now().Format(time.RFC3339), list[3]["last_used_at"])
}
