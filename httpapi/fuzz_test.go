package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/projections/writeside"
)

// fuzzSeeds are bodies both fuzz targets start from: valid ones, each
// class of bad character, broken JSON and odd values.
var fuzzSeeds = []string{
	`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-1","source_id":"crm","sensitivity_level":"low","session_id":"s-1","task_type":"kyc","query":"income","principal_claims":["group:credit"]}`,
	`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-1","source_id":"hr_records","sensitivity_level":"critical","session_id":"s-2","action":"delete"}`,
	`{"name":"ci","scope":"read"}`,
	`{"name":"bot","scope":"evaluate","agent_id":"loan-agent","expires_days":30}`,
	`{"name":"at","scope":"admin","expires_at":"2031-03-05T00:00:00Z"}`,
	`{"name":"a\u001b[31m","scope":"read"}`,
	`{"agent_role":"loan_officer","user_id":"u","source_id":"crm\u001b[2J","sensitivity_level":"low","session_id":"s"}`,
	`{"agent_role":"loan\u202eofficer","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"s"}`,
	`{"agent_role":"loan_officer","user_id":"u\u200b","source_id":"crm","sensitivity_level":"low","session_id":"s"}`,
	`{"agent_role":"loan_officer","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"s","query":"\ud800"}`,
	"{\"agent_role\":\"loan_officer\",\"user_id\":\"u\",\"source_id\":\"crm\xff\",\"sensitivity_level\":\"low\",\"session_id\":\"s\"}",
	"{\"name\":\"\x7f\",\"scope\":\"read\"}",
	`{"name":"x","scope":"read","expires_days":1e309}`,
	`{"name":"x","scope":"read","expires_days":-9223372036854775809}`,
	`{"name":"x","scope":"read","expires_at":"9999-12-31T23:59:59Z"}`,
	`{"name":"x","scope":"read","expires_at":"0000-01-01T00:00:00Z"}`,
	`{"name":"x","scope":"read","name":"y"}`, `{"NAME":"x"}`, `{"principal_claims":[null,1]}`,
	`{"session_id":{"a":[1,2,{"b":null}]}}`, `[]`, `null`, `{}`, `{`, `{"a":1} {}`, `"x"`, ` `,
}

// fuzzStack is a real stack with a policy, an approved agent, an unbound
// evaluate key (it may evaluate as any agent) and the admin key, each
// already used once and durable, so that a request that is refused must
// leave the head where it was.
func fuzzStack(f *testing.F) (*stack, string) {
	s := newStack(f)
	ctx := context.Background()
	_, err := s.ledger.CreatePolicy(ctx, writeside.ActorInit, policy.Policy{Name: "lending", AgentRole: "loan_officer",
		AllowedSources: []string{"crm", "core_banking"}, DeniedSources: []string{"hr_records"}})
	require.NoError(f, err)
	_, err = s.ledger.ChangeAgentStatus(ctx, writeside.ActorInit, "loan-agent", "approved")
	require.NoError(f, err)
	_, key, _, err := s.ledger.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "fuzz", Scope: "evaluate"})
	require.NoError(f, err)
	for _, k := range []string{key, s.admin} {
		caller, err := s.ledger.Authenticate(k)
		require.NoError(f, err)
		s.ledger.RecordUse(ctx, caller)
	}
	// A synchronous write behind the uses makes them durable.
	_, _, _, err = s.ledger.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "sync", Scope: "read"})
	require.NoError(f, err)
	return s, key
}

// checkFuzzAnswer requires what every body must get: a 4xx whose body is
// exactly {"detail": "..."} and that appended nothing, or the success
// status with one record appended; never a 5xx.
func checkFuzzAnswer(t *testing.T, s *stack, before uint64, r response, success int) map[string]any {
	t.Helper()
	switch {
	case r.status == success:
		assert.Equal(t, before+1, s.head(t), "a success appends exactly one record")
		return r.object(t)
	case r.status >= 400 && r.status < 500:
		assert.NotEmpty(t, r.detail(t))
		assert.Equal(t, before, s.head(t), "a %d appends nothing", r.status)
	default:
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	return nil
}

// FuzzEvaluateBody posts arbitrary bodies to POST /v1/context/evaluate of
// a real server: a valid decision or a 4xx with a JSON detail, never a
// 5xx, and nothing appended on a 4xx.
func FuzzEvaluateBody(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	s, key := fuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := s.head(t)
		r := s.do(t, request{method: http.MethodPost, path: "/v1/context/evaluate", key: key, body: string(body),
			contentType: "application/json"})
		if string(body) == fuzzSeeds[0] {
			require.Equal(t, http.StatusOK, r.status, "the valid seed is decided: %s", r.body)
		}
		m := checkFuzzAnswer(t, s, before, r, http.StatusOK)
		if m == nil {
			return
		}
		assert.Contains(t, []any{"ALLOW", "DENY"}, m["decision"], "%s", r.body)
		assert.NotEmpty(t, m["reason"])
		assert.Equal(t, float64(before+1), m["seq"], "the answer names the record appended")
	})
}

// FuzzCreateKeyBody posts arbitrary bodies to POST /v1/keys of a real
// server: a created key or a 4xx with a JSON detail, never a 5xx, and
// nothing appended on a 4xx.
func FuzzCreateKeyBody(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	s, _ := fuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := s.head(t)
		r := s.do(t, request{method: http.MethodPost, path: "/v1/keys", key: s.admin, body: string(body),
			contentType: "application/json"})
		if string(body) == fuzzSeeds[2] {
			require.Equal(t, http.StatusCreated, r.status, "the valid seed creates a key: %s", r.body)
		}
		m := checkFuzzAnswer(t, s, before, r, http.StatusCreated)
		if m == nil {
			return
		}
		assert.Regexp(t, keyPattern, m["key"])
		assert.Contains(t, []any{"admin", "read", "evaluate"}, m["scope"])
		id, _ := m["key_id"].(string)
		k, err := s.ledger.Key(id)
		require.NoError(t, err, "the created key is in the table")
		assert.Equal(t, m["name"], k.Name)
	})
}
