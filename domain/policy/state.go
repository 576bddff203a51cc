package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// ErrNotFound reports that no policy has the given policy_id (HTTP 404).
var ErrNotFound = errors.New("policy: policy not found")

// ErrInconsistent reports an event that does not fit the [State] it is
// applied to: a missing policy_id, version or time, an unknown or duplicate
// policy_id, a policy that does not compile, or a name that another policy
// holds. Apply leaves the State unchanged when it returns it.
// In a log that only ever received events from the deciders it means
// corruption or a bug (HTTP 500).
var ErrInconsistent = errors.New("policy: event does not fit the policy state")

// State is the policy projection: the current policies of a tenant, compiled
// into an immutable [*Set]. The zero State is empty and ready to use. A State
// must not be copied after first use (use [State.Clone]).
//
// Concurrency: Apply and ApplyAll must be serialized by the caller (one
// writer). Every other method is safe to call concurrently with them and with
// each other: the current *Set is published with an atomic pointer and never
// modified afterwards (copy-on-write), so a reader takes [State.Set] once and
// evaluates against that snapshot without locks.
type State struct {
	set atomic.Pointer[Set]
}

// Set returns the current compiled policies. The result is immutable and
// stays valid (as a snapshot) after later Apply calls. It may be nil, which
// is a valid empty set.
func (s *State) Set() *Set { return s.set.Load() }

// Len returns the number of current policies.
func (s *State) Len() int { return s.Set().Len() }

// ByID returns a deep copy of the policy with the given policy_id.
func (s *State) ByID(id string) (Policy, bool) {
	c, ok := s.Set().ByID(id)
	if !ok {
		return Policy{}, false
	}
	return c.Policy(), true
}

// List returns deep copies of the current policies sorted by name (names are
// unique, so the order is total and the same on every replica and after
// every replay).
func (s *State) List() []Policy {
	all := s.Set().All()
	out := make([]Policy, len(all))
	for i, c := range all {
		out[i] = c.Policy()
	}
	slices.SortFunc(out, func(a, b Policy) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Clone returns an independent copy of s, for snapshots and point-in-time
// replay. It is cheap: the Set is immutable, so the copy shares it until
// either State applies an event.
func (s *State) Clone() *State {
	c := &State{}
	c.set.Store(s.Set())
	return c
}

// Apply folds one event into s. It is the one fold for live state, start-up
// replay and point-in-time replay. It checks structural sanity only and
// never re-runs command rules:
//
//   - policy.created: policy_id, version >= 1, created_at and updated_at are
//     present; the policy_id is not in use; the policy compiles; no other
//     policy holds its name.
//   - policy.updated: the policy_id exists; the version is greater than the
//     current one; created_at and updated_at are present; the policy
//     compiles; no other policy holds its name.
//   - policy.deleted: the policy_id exists, deleted_at is present, and name,
//     agent_role and version match the current policy.
//
// Times are stored in UTC. On error (wrapping [ErrInconsistent] or
// [ErrUnknownEvent]) s is unchanged.
func (s *State) Apply(ev Event) error {
	next, err := fold(s.Set(), ev)
	if err != nil {
		return err
	}
	s.set.Store(next)
	return nil
}

// ApplyAll folds evs in order, all or nothing: on the first error s is left
// unchanged, and on success readers see the new Set at once, never a state in
// between (useful for the events of one [Sync]). The result equals applying
// the events one by one with Apply.
func (s *State) ApplyAll(evs ...Event) error {
	set := s.Set()
	for i, ev := range evs {
		var err error
		if set, err = fold(set, ev); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	s.set.Store(set)
	return nil
}

// fold returns the set that results from applying ev to set.
func fold(set *Set, ev Event) (*Set, error) {
	switch e := ev.(type) {
	case PolicyCreated:
		p := e.Policy
		if err := checkManaged(e, p); err != nil {
			return nil, err
		}
		if _, dup := set.ByID(p.PolicyID); dup {
			return nil, inconsistent(e, p.PolicyID, "policy_id already exists")
		}
		return withCompiled(set, e, p)
	case PolicyUpdated:
		p := e.Policy
		if err := checkManaged(e, p); err != nil {
			return nil, err
		}
		old, ok := set.ByID(p.PolicyID)
		if !ok {
			return nil, inconsistent(e, p.PolicyID, "unknown policy_id")
		}
		if p.Version <= old.Version() {
			return nil, inconsistent(e, p.PolicyID,
				fmt.Sprintf("version %d is not greater than the current version %d", p.Version, old.Version()))
		}
		return withCompiled(set, e, p)
	case PolicyDeleted:
		old, ok := set.ByID(e.PolicyID)
		if !ok {
			return nil, inconsistent(e, e.PolicyID, "unknown policy_id")
		}
		if e.DeletedAt.IsZero() {
			return nil, inconsistent(e, e.PolicyID, "deleted_at is missing")
		}
		if e.Name != old.Name() || e.AgentRole != old.Role() || e.Version != old.Version() {
			return nil, inconsistent(e, e.PolicyID, fmt.Sprintf(
				"name, agent_role and version ('%s', '%s', %d) do not match the current policy ('%s', '%s', %d)",
				e.Name, e.AgentRole, e.Version, old.Name(), old.Role(), old.Version()))
		}
		return set.Without(e.PolicyID), nil
	}
	return nil, fmt.Errorf("policy: apply %T: %w", ev, ErrUnknownEvent)
}

// checkManaged checks the server-managed fields of a created or updated
// policy.
func checkManaged(ev Event, p Policy) error {
	switch {
	case p.PolicyID == "":
		return inconsistent(ev, p.PolicyID, "policy_id is missing")
	case p.Version < 1:
		return inconsistent(ev, p.PolicyID, fmt.Sprintf("version must be at least 1, got %d", p.Version))
	case p.CreatedAt.IsZero() || p.UpdatedAt.IsZero():
		return inconsistent(ev, p.PolicyID, "created_at and updated_at are required")
	}
	return nil
}

// withCompiled compiles p (times in UTC) and returns set with it, refusing
// to displace another policy. Compile and conflict errors are quoted with %v,
// not wrapped: an Apply error must match ErrInconsistent only, never
// ErrInvalidPolicy or ErrConflict, which mean a bad request.
func withCompiled(set *Set, ev Event, p Policy) (*Set, error) {
	p.CreatedAt = p.CreatedAt.UTC()
	p.UpdatedAt = p.UpdatedAt.UTC()
	c, err := Compile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s '%s': %v", ErrInconsistent, ev.EventType(), p.PolicyID, err)
	}
	if err := set.Conflict(c); err != nil {
		return nil, fmt.Errorf("%w: %s '%s': %v", ErrInconsistent, ev.EventType(), p.PolicyID, err)
	}
	return set.With(c), nil
}

func inconsistent(ev Event, id, problem string) error {
	return fmt.Errorf("%w: %s '%s': %s", ErrInconsistent, ev.EventType(), id, problem)
}
