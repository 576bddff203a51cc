package decision

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/text"
)

// Request limits.
const (
	// MaxFieldLength bounds every identifier of a request, in characters.
	MaxFieldLength = 256
	// MaxQueryLength bounds the recorded query, in characters.
	MaxQueryLength = 8192
	// MaxClaims bounds principal_claims.
	MaxClaims = 64
)

// FieldError reports a request field that is missing or malformed (HTTP
// 422). Field is the wire name.
type FieldError struct {
	Field   string
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character
	// (errors.Is(err, text.ErrRefused)).
	Err error
}

func (e *FieldError) Error() string { return "decision: " + e.Field + " " + e.Problem }

// Unwrap returns the cause, or nil.
func (e *FieldError) Unwrap() error { return e.Err }

// ValidateRequest checks an evaluation request's shape and reports every
// problem at once (errors.Join of *FieldError). Required: agent_role,
// user_id, source_id, sensitivity_level, session_id. Optional: agent_id,
// task_type, action (read, write or delete; empty means read), query,
// principal_claims. The identifiers (every field but sensitivity_level,
// action and query) follow text.Identifier, the query text.FreeText.
func ValidateRequest(r policy.Request) error {
	var errs []error
	bad := func(field, problem string) { errs = append(errs, &FieldError{Field: field, Problem: problem}) }
	refused := func(field string, err error) bool {
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Problem: text.Problem(err), Err: err})
		}
		return err != nil
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{
		{"agent_role", r.AgentRole, true},
		{"agent_id", r.AgentID, false},
		{"user_id", r.UserID, true},
		{"source_id", r.SourceID, true},
		{"session_id", r.SessionID, true},
		{"task_type", r.TaskType, false},
	} {
		switch {
		case f.value == "" && f.required:
			bad(f.name, "is required")
		case refused(f.name, text.Identifier(f.value)):
		case utf8.RuneCountInString(f.value) > MaxFieldLength:
			bad(f.name, fmt.Sprintf("must be at most %d characters", MaxFieldLength))
		}
	}
	switch {
	case r.Sensitivity == "":
		bad("sensitivity_level", "is required (low, medium, high or critical)")
	case !r.Sensitivity.Valid():
		bad("sensitivity_level", fmt.Sprintf("must be one of low, medium, high, critical, got %q", string(r.Sensitivity)))
	}
	if r.Action != "" && !r.Action.Valid() {
		bad("action", fmt.Sprintf("must be one of read, write, delete, got %q", string(r.Action)))
	}
	if !refused("query", text.FreeText(r.Query)) && utf8.RuneCountInString(r.Query) > MaxQueryLength {
		bad("query", fmt.Sprintf("must be at most %d characters", MaxQueryLength))
	}
	if len(r.PrincipalClaims) > MaxClaims {
		bad("principal_claims", fmt.Sprintf("must hold at most %d claims", MaxClaims))
	}
	for i, c := range r.PrincipalClaims {
		field := fmt.Sprintf("principal_claims[%d]", i)
		if !refused(field, text.Identifier(c)) && (c == "" || utf8.RuneCountInString(c) > MaxFieldLength) {
			bad(field, fmt.Sprintf("must be 1 to %d characters", MaxFieldLength))
		}
	}
	return errors.Join(errs...)
}
