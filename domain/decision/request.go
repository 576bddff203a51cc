package decision

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/custos-dev/custos/domain/policy"
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
}

func (e *FieldError) Error() string { return "decision: " + e.Field + " " + e.Problem }

// ValidateRequest checks an evaluation request's shape and reports every
// problem at once (errors.Join of *FieldError). Required: agent_role,
// user_id, source_id, sensitivity_level, session_id. Optional: agent_id,
// task_type, action (read, write or delete; empty means read), query,
// principal_claims.
func ValidateRequest(r policy.Request) error {
	var errs []error
	bad := func(field, problem string) { errs = append(errs, &FieldError{Field: field, Problem: problem}) }
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
	if utf8.RuneCountInString(r.Query) > MaxQueryLength {
		bad("query", fmt.Sprintf("must be at most %d characters", MaxQueryLength))
	}
	if len(r.PrincipalClaims) > MaxClaims {
		bad("principal_claims", fmt.Sprintf("must hold at most %d claims", MaxClaims))
	}
	for i, c := range r.PrincipalClaims {
		if c == "" || utf8.RuneCountInString(c) > MaxFieldLength {
			bad(fmt.Sprintf("principal_claims[%d]", i), fmt.Sprintf("must be 1 to %d characters", MaxFieldLength))
		}
	}
	return errors.Join(errs...)
}
