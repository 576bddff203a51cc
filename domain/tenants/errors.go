package tenants

import "errors"

// ErrNotFound reports that no tenant has the given id (HTTP 404).
var ErrNotFound = errors.New("tenants: tenant not found")

// ErrConflict is the parent of every error that reports a command which
// contradicts the tenant's current state (HTTP 409).
var ErrConflict = errors.New("tenants: conflict with the tenant's current state")

// Conflict errors (HTTP 409). Each satisfies errors.Is(err, ErrConflict).
var (
	// ErrExists reports a Create of a tenant id already taken (ids are
	// never reused).
	ErrExists error = &childError{"tenants: tenant id already exists", ErrConflict}
	// ErrSuspended reports a Suspend of a suspended tenant.
	ErrSuspended error = &childError{"tenants: tenant is already suspended", ErrConflict}
	// ErrActive reports a Resume of a tenant that is not suspended.
	ErrActive error = &childError{"tenants: tenant is not suspended", ErrConflict}
)

// ErrUnknownEvent reports an event type this package does not know.
var ErrUnknownEvent = errors.New("tenants: unknown event type")

// ErrInconsistent reports an event that does not fit the State it is
// applied to (unknown or duplicate tenant id, missing times). Apply leaves
// the State unchanged when it returns it.
var ErrInconsistent = errors.New("tenants: event does not fit the tenant state")

// ValidationError reports a command field that breaks a rule (HTTP 422).
// Field is the snake_case wire name ("tenant_id", "name", "reason").
type ValidationError struct {
	Field   string
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character.
	Err error
}

func (e *ValidationError) Error() string {
	return "tenants: invalid " + e.Field + ": " + e.Problem
}

// Unwrap returns the cause, or nil.
func (e *ValidationError) Unwrap() error { return e.Err }

// childError is a sentinel that also matches its parent with errors.Is.
type childError struct {
	msg    string
	parent error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.parent }

// ErrTenantSuspended reports a change ordered by a key of a suspended
// tenant (HTTP 403). Nothing is recorded.
var ErrTenantSuspended = errors.New("tenants: the tenant is suspended")
