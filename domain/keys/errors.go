package keys

import "errors"

// ErrNotFound reports that no key has the given id (HTTP 404).
var ErrNotFound = errors.New("keys: key not found")

// ErrConflict is the parent of every error that reports a request which
// contradicts the key's current state (HTTP 409). ErrRevoked, ErrExpired,
// ErrRotated and ErrLastAdmin all satisfy errors.Is(err, ErrConflict).
var ErrConflict = errors.New("keys: conflict with the key's current state")

// Conflict errors (HTTP 409). Each satisfies errors.Is(err, ErrConflict).
var (
	// ErrRevoked reports that the key is already revoked.
	ErrRevoked error = &childError{"keys: key is already revoked", ErrConflict}
	// ErrExpired reports that the key has expired.
	ErrExpired error = &childError{"keys: key has expired", ErrConflict}
	// ErrRotated reports that the key was already rotated and is only alive
	// for the rest of its grace window; rotate or use its successor instead.
	ErrRotated error = &childError{"keys: key was already rotated; it only lives until its grace window ends", ErrConflict}
	// ErrLastAdmin reports that a key tried to revoke itself while it is the
	// last active admin key.
	ErrLastAdmin error = &childError{"keys: refusing to let the last active admin key revoke itself: that would lock every administrator out; create or keep another admin key first", ErrConflict}
)

// ErrInvalidKey is the only error Authenticate returns (HTTP 403): the key is
// unknown, malformed, has a bad checksum, has expired or is revoked. It does
// not say which, so callers learn nothing. CheckFormat returns errors that
// wrap it and name the reason, for tools such as secret scanners.
var ErrInvalidKey = errors.New("keys: invalid API key")

// ErrInsufficientScope reports a key whose scope does not allow the change
// it orders (HTTP 403).
var ErrInsufficientScope = errors.New("keys: insufficient scope")

// Reasons CheckFormat reports; each satisfies errors.Is(err, ErrInvalidKey).
var (
	errShape    error = &childError{"keys: invalid API key: want cst_ followed by 49 base62 characters", ErrInvalidKey}
	errChecksum error = &childError{"keys: invalid API key: checksum mismatch", ErrInvalidKey}
)

// ErrUnknownEvent reports an event type this package does not know, in
// Encode, Decode or Apply.
var ErrUnknownEvent = errors.New("keys: unknown event type")

// ErrInconsistent reports an event that does not fit the State it is applied
// to (unknown or duplicate key id, duplicate hash, unknown scope, missing
// times). Apply leaves the State unchanged when it returns it. In a log that
// only ever received events from the deciders it means corruption or a bug.
var ErrInconsistent = errors.New("keys: event does not fit the key state")

// ErrMalformedID reports a new key id passed to Create or Rotate that is not
// of the form "key_<ULID>" (26 upper-case Crockford base32 characters) or
// that is already taken. It is a caller bug (HTTP 500), not a bad request.
var ErrMalformedID = errors.New("keys: new key id must be key_<ULID> and unused")

// ValidationError reports a command field that breaks a rule (HTTP 422).
// Field is the snake_case wire name of the field ("name", "scope",
// "expires_days", "expires_at", "agent_id", "grace_seconds"); Problem says what
// is allowed. Create reports every broken rule at once, joined with
// errors.Join; errors.As finds the first.
type ValidationError struct {
	Field   string
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character
	// (errors.Is(err, text.ErrRefused)).
	Err error
}

func (e *ValidationError) Error() string {
	return "keys: invalid " + e.Field + ": " + e.Problem
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
