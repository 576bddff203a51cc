package tenants

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/custos-dev/custos/domain/text"
)

// State is the tenant projection: every tenant ever created, by id. The
// zero State is empty and ready. It is not safe for concurrent use: the
// caller holds it under the system chain's lock, as the Ledger does.
type State struct {
	tenants map[string]Tenant
}

// Get returns the tenant with id, and whether it exists.
func (s *State) Get(id string) (Tenant, bool) {
	t, ok := s.tenants[id]
	return t, ok
}

// List returns every tenant sorted by id.
func (s *State) List() []Tenant {
	return slices.SortedFunc(maps.Values(s.tenants), func(a, b Tenant) int { return cmp.Compare(a.TenantID, b.TenantID) })
}

// Len returns the number of tenants.
func (s *State) Len() int { return len(s.tenants) }

// AnySuspended reports whether some tenant in s is suspended. On a tenant's
// own chain s holds that tenant alone, so this is whether its keys are
// refused. It allocates nothing (it runs on every change).
func (s *State) AnySuspended() bool {
	for _, t := range s.tenants {
		if t.Status == StatusSuspended {
			return true
		}
	}
	return false
}

// Apply folds e into s. It returns an error wrapping ErrInconsistent, and
// leaves s unchanged, when e does not fit (an unknown or duplicate id, a
// zero time), and ErrUnknownEvent for an event it does not know.
func (s *State) Apply(e Event) error {
	switch e := e.(type) {
	case TenantCreated:
		if _, err := ParseID(e.TenantID); err != nil {
			return fmt.Errorf("%w: tenant.created: %v", ErrInconsistent, err)
		}
		if _, ok := s.tenants[e.TenantID]; ok {
			return fmt.Errorf("%w: tenant.created: tenant %s exists", ErrInconsistent, e.TenantID)
		}
		if e.CreatedAt.IsZero() {
			return fmt.Errorf("%w: tenant.created: tenant %s has no created_at", ErrInconsistent, e.TenantID)
		}
		if s.tenants == nil {
			s.tenants = make(map[string]Tenant)
		}
		s.tenants[e.TenantID] = Tenant{TenantID: e.TenantID, Name: e.Name, Status: StatusActive, CreatedAt: e.CreatedAt.UTC()}
	case TenantSuspended:
		t, ok := s.tenants[e.TenantID]
		if !ok || e.SuspendedAt.IsZero() {
			return fmt.Errorf("%w: tenant.suspended: unknown tenant %q or no suspended_at", ErrInconsistent, e.TenantID)
		}
		t.Status, t.SuspendedAt, t.SuspendReason = StatusSuspended, e.SuspendedAt.UTC(), e.Reason
		s.tenants[e.TenantID] = t
	case TenantResumed:
		t, ok := s.tenants[e.TenantID]
		if !ok || e.ResumedAt.IsZero() {
			return fmt.Errorf("%w: tenant.resumed: unknown tenant %q or no resumed_at", ErrInconsistent, e.TenantID)
		}
		t.Status, t.SuspendedAt, t.SuspendReason = StatusActive, time.Time{}, ""
		s.tenants[e.TenantID] = t
	default:
		return fmt.Errorf("tenants: apply %T: %w", e, ErrUnknownEvent)
	}
	return nil
}

// MaxNameLen and MaxReasonLen bound the free-text fields, in bytes.
const (
	MaxNameLen   = 200
	MaxReasonLen = 500
)

// CreateCommand asks for a new tenant.
type CreateCommand struct {
	TenantID string `json:"tenant_id"`
	// Name is a display name, an identifier by text.Identifier, stored
	// trimmed; empty means the id.
	Name string `json:"name"`
}

// Create decides a CreateCommand against s at now. It returns a
// *ValidationError for a bad id or name and ErrExists for an id already
// taken.
func Create(s *State, cmd CreateCommand, now time.Time) (TenantCreated, error) {
	id, err := ParseID(cmd.TenantID)
	if err != nil {
		return TenantCreated{}, err
	}
	name := strings.TrimSpace(cmd.Name)
	if name == "" {
		name = id
	}
	if err := checkText("name", name, MaxNameLen, text.Identifier); err != nil {
		return TenantCreated{}, err
	}
	if _, ok := s.Get(id); ok {
		return TenantCreated{}, fmt.Errorf("tenant %s: %w", id, ErrExists)
	}
	return TenantCreated{TenantID: id, Name: name, CreatedAt: now.UTC()}, nil
}

// Suspend decides the suspension of tenant id at now, with an optional
// reason shown to the tenant's keys (free text by text.FreeText). It
// returns ErrNotFound, ErrSuspended, or a *ValidationError for a reason too
// long or with refused characters.
func Suspend(s *State, id, reason string, now time.Time) (TenantSuspended, error) {
	t, ok := s.Get(id)
	if !ok {
		return TenantSuspended{}, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	reason = strings.TrimSpace(reason)
	if err := checkText("reason", reason, MaxReasonLen, text.FreeText); err != nil {
		return TenantSuspended{}, err
	}
	if t.Status == StatusSuspended {
		return TenantSuspended{}, fmt.Errorf("tenant %s: %w", id, ErrSuspended)
	}
	return TenantSuspended{TenantID: id, Reason: reason, SuspendedAt: now.UTC()}, nil
}

// Resume decides the resumption of suspended tenant id at now. It returns
// ErrNotFound or ErrActive.
func Resume(s *State, id string, now time.Time) (TenantResumed, error) {
	t, ok := s.Get(id)
	if !ok {
		return TenantResumed{}, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	if t.Status != StatusSuspended {
		return TenantResumed{}, fmt.Errorf("tenant %s: %w", id, ErrActive)
	}
	return TenantResumed{TenantID: id, ResumedAt: now.UTC()}, nil
}

// checkText refuses text longer than max bytes or refused by rule (the
// domain/text rule of identifiers or of free text).
func checkText(field, v string, max int, rule func(string) error) error {
	if len(v) > max {
		return &ValidationError{Field: field, Problem: fmt.Sprintf("at most %d bytes", max)}
	}
	if err := rule(v); err != nil {
		return &ValidationError{Field: field, Problem: text.Problem(err), Err: err}
	}
	return nil
}
