package keys

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos/domain/text"
)

// Command limits and defaults. A day is exactly 24 hours.
const (
	// MaxNameLength is the longest key name, in characters, after trimming.
	MaxNameLength = 128
	// MaxAgentIDLength is the longest agent id, in characters.
	MaxAgentIDLength = 128
	// DefaultExpiresDays is the lifetime of a key created without
	// expires_days or expires_at.
	DefaultExpiresDays = 90
	// MaxExpiresDays bounds expires_days and how far ahead expires_at may lie.
	MaxExpiresDays = 3650
	// MaxGraceSeconds bounds RotateCommand.GraceSeconds (7 days).
	MaxGraceSeconds = 7 * 24 * 60 * 60
	// UseRecordInterval is how often at most a key.used is recorded per key.
	UseRecordInterval = time.Minute
)

const day = 24 * time.Hour

// CreateCommand asks for a new key. Field names in errors are the snake_case
// names given in the comments.
type CreateCommand struct {
	// Name (name) is required: 1 to MaxNameLength characters after trimming
	// spaces, an identifier by text.Identifier (valid UTF-8, no control,
	// bidi, zero-width or other invisible characters). It is stored trimmed.
	Name string
	// Scope (scope) is "admin", "read" or "evaluate".
	Scope string
	// ExpiresDays (expires_days), 1 to MaxExpiresDays, sets the lifetime in
	// days from now. At most one of ExpiresDays and ExpiresAt may be given;
	// with neither the key lives DefaultExpiresDays.
	ExpiresDays *int
	// ExpiresAt (expires_at) must lie after now and at most MaxExpiresDays
	// days ahead.
	ExpiresAt *time.Time
	// AgentID (agent_id) optionally binds the key to one agent; only allowed
	// with scope evaluate. At most MaxAgentIDLength characters, an identifier
	// by text.Identifier.
	AgentID string
}

// RotateCommand asks to replace a key with a new one.
type RotateCommand struct {
	// KeyID is the key to replace.
	KeyID string
	// GraceSeconds (grace_seconds), 0 to MaxGraceSeconds, keeps the old key
	// working that long after the rotation, but never past its own expiry.
	// nil means 0: the old key stops working at once.
	GraceSeconds *int
}

// Create decides a new key. It validates cmd (every broken rule is reported,
// as *ValidationError values joined with errors.Join), mints a key from
// entropy and returns the event to record together with the plaintext key,
// which must be shown to the caller once and never stored. keyID is the id of
// the new key ("key_<ULID>"), minted by the caller. s is only read.
func Create(s *State, cmd CreateCommand, now time.Time, keyID string, entropy io.Reader) (KeyCreated, string, error) {
	return create(s, cmd, now, keyID, entropy, ParseScope)
}

// CreateSuperadmin is Create for a key of ScopeSuperadmin, for the system
// chain only (a tenant's chain never holds one): cmd.Scope must be empty or
// "superadmin", and a superadmin key is bound to no agent.
func CreateSuperadmin(s *State, cmd CreateCommand, now time.Time, keyID string, entropy io.Reader) (KeyCreated, string, error) {
	return create(s, cmd, now, keyID, entropy, func(scope string) (Scope, error) {
		if scope != "" && scope != string(ScopeSuperadmin) {
			return "", &ValidationError{Field: "scope", Problem: "must be superadmin (or empty)"}
		}
		return ScopeSuperadmin, nil
	})
}

// create is Create with the scope rule given.
func create(s *State, cmd CreateCommand, now time.Time, keyID string, entropy io.Reader, parseScope func(string) (Scope, error)) (KeyCreated, string, error) {
	now = now.UTC()
	var errs []error
	name := strings.TrimSpace(cmd.Name)
	if name == "" {
		errs = append(errs, &ValidationError{Field: "name", Problem: "must not be empty"})
	} else if ve := checkText("name", name, MaxNameLength); ve != nil {
		errs = append(errs, ve)
	}
	scope, err := parseScope(cmd.Scope)
	if err != nil {
		errs = append(errs, err)
	}
	expiresAt, err := createExpiry(cmd, now)
	if err != nil {
		errs = append(errs, err)
	}
	if cmd.AgentID != "" {
		if ve := checkText("agent_id", cmd.AgentID, MaxAgentIDLength); ve != nil {
			errs = append(errs, ve)
		} else if scope != "" && scope != ScopeEvaluate {
			errs = append(errs, &ValidationError{Field: "agent_id", Problem: "is only allowed with scope evaluate"})
		}
	}
	switch len(errs) {
	case 0:
	case 1:
		return KeyCreated{}, "", errs[0]
	default:
		return KeyCreated{}, "", errors.Join(errs...)
	}

	ev := KeyCreated{
		KeyID:     keyID,
		Name:      name,
		Scope:     scope,
		CreatedAt: now,
		ExpiresAt: expiresAt,
		AgentID:   cmd.AgentID,
	}
	plaintext, err := mint(s, &ev, entropy)
	if err != nil {
		return KeyCreated{}, "", err
	}
	return ev, plaintext, nil
}

func createExpiry(cmd CreateCommand, now time.Time) (time.Time, error) {
	limit := now.Add(MaxExpiresDays * day)
	switch {
	case cmd.ExpiresDays != nil && cmd.ExpiresAt != nil:
		return time.Time{}, &ValidationError{Field: "expires_at", Problem: "give either expires_days or expires_at, not both"}
	case cmd.ExpiresDays != nil:
		d := *cmd.ExpiresDays
		if d < 1 || d > MaxExpiresDays {
			return time.Time{}, &ValidationError{Field: "expires_days", Problem: "must be a whole number of days from 1 to " + strconv.Itoa(MaxExpiresDays)}
		}
		return now.Add(time.Duration(d) * day), nil
	case cmd.ExpiresAt != nil:
		at := cmd.ExpiresAt.UTC()
		if !at.After(now) {
			return time.Time{}, &ValidationError{Field: "expires_at", Problem: "must be in the future"}
		}
		if at.After(limit) {
			return time.Time{}, &ValidationError{Field: "expires_at", Problem: "must be at most " + strconv.Itoa(MaxExpiresDays) + " days ahead"}
		}
		return at, nil
	}
	return now.Add(DefaultExpiresDays * day), nil
}

// checkText returns what is wrong with the identifier s of field, or nil
// if nothing is. The characters follow text.Identifier.
func checkText(field, s string, maxChars int) *ValidationError {
	if err := text.Identifier(s); err != nil {
		return &ValidationError{Field: field, Problem: text.Problem(err), Err: err}
	}
	if utf8.RuneCountInString(s) > maxChars {
		return &ValidationError{Field: field, Problem: "must be at most " + strconv.Itoa(maxChars) + " characters"}
	}
	return nil
}

// Rotate decides the replacement of cmd.KeyID by a new key newKeyID with the
// same name, scope and agent binding and the same lifetime (old expires_at
// minus old created_at), counted from now. The old key stops working at now
// plus the grace period, capped at its own expires_at. It returns the event to
// record and the new plaintext key. Errors: *ValidationError for
// grace_seconds; ErrNotFound; ErrRevoked; ErrExpired; ErrRotated when the key
// was already rotated and is in its grace window. s is only read.
func Rotate(s *State, cmd RotateCommand, now time.Time, newKeyID string, entropy io.Reader) (KeyRotated, string, error) {
	now = now.UTC()
	var grace time.Duration
	if cmd.GraceSeconds != nil {
		g := *cmd.GraceSeconds
		if g < 0 || g > MaxGraceSeconds {
			return KeyRotated{}, "", &ValidationError{Field: "grace_seconds", Problem: "must be a whole number of seconds from 0 to " + strconv.Itoa(MaxGraceSeconds) + " (7 days)"}
		}
		grace = time.Duration(g) * time.Second
	}
	old, ok := s.get(cmd.KeyID)
	if !ok {
		return KeyRotated{}, "", ErrNotFound
	}
	if err := old.rotatable(now); err != nil {
		return KeyRotated{}, "", err
	}
	oldRevokedAt := now.Add(grace)
	if expiresAt := old.expiresAt.Time(); oldRevokedAt.After(expiresAt) {
		oldRevokedAt = expiresAt
	}
	k := s.view(old)
	ev := KeyRotated{
		OldKeyID:     k.KeyID,
		OldRevokedAt: oldRevokedAt,
		NewKey: KeyCreated{
			KeyID:       newKeyID,
			Name:        k.Name,
			Scope:       k.Scope,
			CreatedAt:   now,
			ExpiresAt:   now.Add(k.ExpiresAt.Sub(k.CreatedAt)),
			AgentID:     k.AgentID,
			RotatedFrom: k.KeyID,
		},
	}
	plaintext, err := mint(s, &ev.NewKey, entropy)
	if err != nil {
		return KeyRotated{}, "", err
	}
	return ev, plaintext, nil
}

func (e *entry) rotatable(now time.Time) error {
	if revokedAt := e.revoked(); !revokedAt.IsZero() {
		if !now.Before(revokedAt) {
			return ErrRevoked
		}
		return ErrRotated // revocation pending: only rotations schedule one
	}
	if e.rotatedTo != (str{}) {
		return ErrRotated
	}
	if !now.Before(e.expiresAt.Time()) {
		return ErrExpired
	}
	return nil
}

// Revoke decides that keyID stops working now. actorKeyID is the key making
// the request ("" for none, e.g. an operator tool). A key whose revocation is
// pending (a rotated key in its grace window) may still be revoked at once.
// Errors: ErrNotFound; ErrRevoked if it is already revoked at now;
// ErrLastAdmin if an admin key revokes itself while no other admin key is
// active and free of a pending revocation. Revoking an expired key is
// allowed. s is only read.
func Revoke(s *State, keyID, actorKeyID string, now time.Time) (KeyRevoked, error) {
	now = now.UTC()
	k, ok := s.get(keyID)
	if !ok {
		return KeyRevoked{}, ErrNotFound
	}
	if revokedAt := k.revoked(); !revokedAt.IsZero() && !now.Before(revokedAt) {
		return KeyRevoked{}, ErrRevoked
	}
	if keyID == actorKeyID && k.scope.Scope() == ScopeAdmin && !s.otherAdmin(keyID, now) {
		return KeyRevoked{}, ErrLastAdmin
	}
	return KeyRevoked{KeyID: keyID, RevokedAt: now}, nil
}

// otherAdmin reports whether an admin key other than except is active at now
// and not scheduled to stop working before it expires.
func (s *State) otherAdmin(except string, now time.Time) bool {
	for e := range s.all() {
		if e.scope.Scope() == ScopeAdmin && e.revoked().IsZero() && now.Before(e.expiresAt.Time()) && !s.arena.is(e.id(), except) {
			return true
		}
	}
	return false
}

// Authorize is the precondition of every change a key orders: the key
// keyID exists in s, is active at now (not revoked, not past its grace
// window, not expired) and its scope allows need. The caller checks it
// against the state at the change's position in the log, under the same
// serialization that orders key.revoked and key.rotated, with now the time
// the change is recorded at, so that no record exists whose actor key was
// not valid for it at its seq. Errors: ErrInvalidKey (unknown, revoked or
// expired, without saying which) or ErrInsufficientScope.
func Authorize(s *State, keyID string, need Scope, now time.Time) (Key, error) {
	e, ok := s.get(keyID)
	if !ok || !e.active(now) {
		return Key{}, ErrInvalidKey
	}
	if scope := e.scope.Scope(); !scope.Allows(need) {
		return Key{}, fmt.Errorf("%w: key %s has scope %s, the change needs %s", ErrInsufficientScope, keyID, scope, need)
	}
	return s.view(e), nil
}

// ActiveAdmins returns how many admin keys are active at now, and the
// earliest instant after now at which one of them stops being active (its
// pending revocation or its expiry): until then, and until the next key
// event, the count cannot change. It visits every key.
func (s *State) ActiveAdmins(now time.Time) (n int, until time.Time) {
	for e := range s.all() {
		if e.scope.Scope() != ScopeAdmin || !e.active(now) {
			continue
		}
		n++
		end := e.expiresAt.Time()
		if revokedAt := e.revoked(); !revokedAt.IsZero() && revokedAt.Before(end) {
			end = revokedAt
		}
		if until.IsZero() || end.Before(until) {
			until = end
		}
	}
	return n, until
}

func (e *entry) active(now time.Time) bool {
	revokedAt := e.revoked()
	return (revokedAt.IsZero() || now.Before(revokedAt)) && now.Before(e.expiresAt.Time())
}

// ShouldRecordUse reports whether a use of k at now should be recorded as a
// key.used event: when no use was recorded yet or the last one is at least
// UseRecordInterval old. This keeps key.used to at most one per key per
// minute.
func ShouldRecordUse(k Key, now time.Time) bool {
	return k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= UseRecordInterval
}

// mint checks that c.KeyID is a fresh key_<ULID> id, generates a key and
// fills c.Prefix and c.KeyHash.
func mint(s *State, c *KeyCreated, entropy io.Reader) (string, error) {
	if !validKeyID(c.KeyID) {
		return "", fmt.Errorf("%w: got %q", ErrMalformedID, c.KeyID)
	}
	if _, dup := s.get(c.KeyID); dup {
		return "", fmt.Errorf("%w: %q already exists", ErrMalformedID, c.KeyID)
	}
	plaintext, err := Generate(entropy)
	if err != nil {
		return "", err
	}
	h := Hash(plaintext)
	if _, dup := s.findHash(h); dup {
		return "", errors.New("keys: generated key collides with an existing key; the entropy source is broken")
	}
	c.Prefix = DisplayPrefix(plaintext)
	c.KeyHash = hex.EncodeToString(h[:])
	return plaintext, nil
}

// validKeyID reports whether id is "key_" and a canonical (upper-case) ULID.
func validKeyID(id string) bool {
	const prefix, ulidLen = "key_", 26
	if len(id) != len(prefix)+ulidLen || id[:len(prefix)] != prefix {
		return false
	}
	u := id[len(prefix):]
	if u[0] > '7' { // 26 base32 digits hold 130 bits; a ULID has 128
		return false
	}
	for i := 0; i < len(u); i++ {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", rune(u[i])) {
			return false
		}
	}
	return true
}
