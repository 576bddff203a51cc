package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
)

// SystemActorPrefix starts the actor of every change no API key ordered
// ("system:init", "system:reset", "system:policy-sync"). Every other actor
// is a key id, and that key must be valid for the change at its seq.
const SystemActorPrefix = "system:"

// IsSystemActor reports whether actor names the system rather than a key.
func IsSystemActor(actor string) bool { return strings.HasPrefix(actor, SystemActorPrefix) }

// SuperadminActorPrefix starts the actor of a deployment superadmin's
// action recorded on a tenant's chain: "superadmin:<key id>". The key lives
// on the system chain (domain/tenants.SystemChain), not on the tenant's, so
// the tenant chain records who it was and the system chain proves the key.
const SuperadminActorPrefix = "superadmin:"

// IsSuperadminActor reports whether actor names a superadmin key.
func IsSuperadminActor(actor string) bool { return strings.HasPrefix(actor, SuperadminActorPrefix) }

// RequiredScope is the least scope the actor key of an event of type t must
// hold: evaluate for decision.made and key.used (which any active key may
// cause), admin for every other change. It is the rule the write path
// checks and the log audit (Auditor) checks again afterwards.
func RequiredScope(t string) keys.Scope {
	switch t {
	case decision.TypeMade, keys.TypeKeyUsed:
		return keys.ScopeEvaluate
	}
	return keys.ScopeAdmin
}

// AuthorizeEvent is the precondition of recording ev with actor at now
// against s, the state at ev's position (before ev is applied): a system
// actor always passes; a tenant event (tenant.*) passes only for a system
// or superadmin actor, so no tenant key, admin included, can suspend or
// resume its own tenant (keys.ErrInsufficientScope); a superadmin actor
// passes only tenant events and the creation of an admin key (how a
// tenant gets its first admin key, or a new one when its admins lost
// theirs), since a superadmin never acts inside a tenant as its keys do
// (keys.ErrInvalidKey); any other key must pass keys.Authorize for
// RequiredScope of ev's type, and is refused with
// tenants.ErrTenantSuspended while the chain's tenant is suspended. It
// returns keys.ErrInvalidKey, keys.ErrInsufficientScope or
// tenants.ErrTenantSuspended.
func (s *State) AuthorizeEvent(actor string, ev Event, now time.Time) error {
	if IsSystemActor(actor) {
		return nil
	}
	isTenant := strings.HasPrefix(ev.EventType(), "tenant.")
	switch {
	case IsSuperadminActor(actor) && (isTenant || isAdminKeyMint(ev)):
		return nil
	case IsSuperadminActor(actor):
		return fmt.Errorf("%w: a superadmin does not act inside a tenant (%s by %s)", keys.ErrInvalidKey, ev.EventType(), actor)
	case isTenant:
		return fmt.Errorf("%w: only a superadmin records %s", keys.ErrInsufficientScope, ev.EventType())
	}
	if _, err := keys.Authorize(s.Keys, actor, RequiredScope(ev.EventType()), now); err != nil {
		return err
	}
	if s.Tenants.AnySuspended() {
		return tenants.ErrTenantSuspended
	}
	return nil
}

// isAdminKeyMint reports whether ev creates a new admin key (not a
// rotation).
func isAdminKeyMint(ev Event) bool {
	c, ok := ev.(keys.KeyCreated)
	return ok && c.Scope == keys.ScopeAdmin && c.RotatedFrom == ""
}

// Kinds of Violation.
const (
	// ViolationActorInvalid: the actor key was unknown, revoked or expired
	// at the record's time.
	ViolationActorInvalid = "actor_invalid"
	// ViolationActorScope: the actor key's scope does not allow the record.
	ViolationActorScope = "actor_scope"
	// ViolationAllowByInvalidKey: an ALLOW decision by a key that was
	// unknown, revoked or expired at the record's time.
	ViolationAllowByInvalidKey = "allow_by_invalid_key"
	// ViolationNoActiveAdmin: after the record no admin key is active at its
	// time. Reported once per stretch without an admin key, not before the
	// first admin key exists.
	ViolationNoActiveAdmin = "no_active_admin"
)

// Violation is a record that breaks an authorization invariant at its
// position in the log.
type Violation struct {
	Seq    uint64 `json:"seq"`
	ID     string `json:"event_id"`
	Type   string `json:"type"`
	Actor  string `json:"actor"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Auditor folds a log from genesis and reports every record that breaks an
// authorization invariant: an actor key that was not valid for the record at
// its seq, an ALLOW by a key revoked or expired at its seq, and any position
// with no active admin key. It uses the same rules as the write path
// (AuthorizeEvent), so a log written by custos yields no violation. Not safe
// for concurrent use.
type Auditor struct {
	state    *State
	hadAdmin bool      // an admin key was active at some earlier record
	noAdmin  bool      // the current stretch without an admin key was reported
	admins   int       // active admin keys at the last record
	recount  time.Time // when admins may next change without a key event
}

// NewAuditor returns an Auditor at genesis.
func NewAuditor() *Auditor { return &Auditor{state: NewState()} }

// Record checks the event ev recorded at m against the state before it,
// then applies it. It returns the violations found at this record; err is
// set only when ev does not apply (a corrupt log, which verify reports).
func (a *Auditor) Record(m Meta, ev Event) ([]Violation, error) {
	var out []Violation
	violation := func(kind, detail string) {
		out = append(out, Violation{Seq: m.Seq, ID: m.ID, Type: ev.EventType(), Actor: m.Actor, Kind: kind, Detail: detail})
	}
	if err := a.state.AuthorizeEvent(m.Actor, ev, m.Time); err != nil {
		made, isDecision := ev.(decision.Made)
		switch {
		case errors.Is(err, keys.ErrInsufficientScope):
			violation(ViolationActorScope, err.Error())
		case isDecision && made.Allowed():
			violation(ViolationAllowByInvalidKey, fmt.Sprintf("ALLOW by key %s, which was not valid at %s", m.Actor, m.Time.UTC().Format(time.RFC3339Nano)))
		default:
			violation(ViolationActorInvalid, fmt.Sprintf("actor key %s was not valid at %s", m.Actor, m.Time.UTC().Format(time.RFC3339Nano)))
		}
	}
	if err := a.state.Apply(m, ev); err != nil {
		return out, fmt.Errorf("domain: audit seq %d (%s): %w", m.Seq, ev.EventType(), err)
	}
	a.state.Keys.TakeChanged() // nothing follows the audited state's keys
	if strings.HasPrefix(ev.EventType(), "key.") && ev.EventType() != keys.TypeKeyUsed || !m.Time.Before(a.recount) {
		a.admins, a.recount = a.state.Keys.ActiveAdmins(m.Time)
		if a.admins == 0 {
			a.recount = time.Unix(1<<62, 0) // only a key event can add an admin key
		}
	}
	switch {
	case a.admins > 0:
		a.hadAdmin, a.noAdmin = true, false
	case a.hadAdmin && !a.noAdmin:
		a.noAdmin = true
		violation(ViolationNoActiveAdmin, "no admin key is active after this record")
	}
	return out, nil
}
