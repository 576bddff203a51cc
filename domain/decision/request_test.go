package decision_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/text"
)

func validRequest() policy.Request {
	return policy.Request{AgentRole: "loan_officer", AgentID: "loan-agent", UserID: "u-1", SourceID: "crm",
		Sensitivity: policy.LevelMedium, SessionID: "s-1", TaskType: "underwriting", Query: "income\n\thistory",
		PrincipalClaims: []string{"group:credit"}}
}

// TestValidateRequestRefusesCharacters sets one field at a time to a
// string with a refused character and checks that exactly that field is
// named, with the text rule as the cause.
func TestValidateRequestRefusesCharacters(t *testing.T) {
	t.Parallel()
	require.NoError(t, decision.ValidateRequest(validRequest()))
	set := map[string]func(*policy.Request, string){
		"agent_role":          func(r *policy.Request, v string) { r.AgentRole = v },
		"agent_id":            func(r *policy.Request, v string) { r.AgentID = v },
		"user_id":             func(r *policy.Request, v string) { r.UserID = v },
		"source_id":           func(r *policy.Request, v string) { r.SourceID = v },
		"session_id":          func(r *policy.Request, v string) { r.SessionID = v },
		"task_type":           func(r *policy.Request, v string) { r.TaskType = v },
		"principal_claims[1]": func(r *policy.Request, v string) { r.PrincipalClaims = []string{"ok", v} },
		"query":               func(r *policy.Request, v string) { r.Query = v },
	}
	bad := map[string]string{"control": "crm\x1b[31m", "DEL": "a\x7f", "bidi": "a\u202Eb", "zero-width": "a\u200Bb", "invalid UTF-8": "a\xffb"}
	for field, setter := range set {
		for class, v := range bad {
			if field == "query" && (class == "bidi" || class == "zero-width") {
				continue // free text keeps them
			}
			r := validRequest()
			setter(&r, v)
			err := decision.ValidateRequest(r)
			require.Error(t, err, "%s %s", field, class)
			var fe *decision.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, field, fe.Field, class)
			assert.ErrorIs(t, err, text.ErrRefused, "%s %s", field, class)
		}
	}
	r := validRequest()
	r.Query = "שלום\u200F עולם \u200D🙂\r\n"
	assert.NoError(t, decision.ValidateRequest(r), "free text keeps marks, joiners and line breaks")
}
