package policy

import (
	"errors"
	"fmt"
	"time"
)

// Create decides a new policy. It returns the event to record; s is only
// read. The policy_id is p.PolicyID when given, else newID (minted by the
// caller; a caller that passes neither gets a plain error, HTTP 500). The
// event's policy has version 1 and created_at = updated_at = now (UTC);
// p's own version and times are ignored.
//
// Errors: an invalid p yields [Policy.Validate]'s error ([*FieldError] values
// joined, matching [ErrInvalidPolicy]: 422) and nothing else; a valid p whose
// name or policy_id belongs to a current policy yields every such clash as a
// [*ConflictError] (joined, matching [ErrConflict]: 409). A role may have
// several policies; which one governs an agent is decided at evaluation
// ([Set.Resolve]).
func Create(s *State, p Policy, now time.Time, newID string) (PolicyCreated, error) {
	p = p.Clone()
	if err := p.Validate(); err != nil {
		return PolicyCreated{}, err
	}
	// Conflicts are checked before a generated id is assigned, so a 409
	// never names an id that was minted for the refused policy.
	if err := conflicts(s.Set(), p, "", "new policy "); err != nil {
		return PolicyCreated{}, err
	}
	if p.PolicyID == "" {
		if newID == "" {
			return PolicyCreated{}, errors.New("policy: create: no policy_id given and newID is empty")
		}
		p.PolicyID = newID
		if err := conflicts(s.Set(), p, "", "new policy "); err != nil {
			return PolicyCreated{}, err // the minted id is taken
		}
	}
	p.Version = 1
	p.CreatedAt = now.UTC()
	p.UpdatedAt = p.CreatedAt
	return PolicyCreated{Policy: p}, nil
}

// Update decides new content for the policy with policy_id id. It returns
// the event to record; s is only read. The event's policy is p with
// policy_id id, version = current version + 1, the original created_at and
// updated_at = now (UTC); p's own version and times are ignored. Every
// update is recorded, even one that changes nothing ([Sync] skips those).
//
// Errors, in this order: no current policy with id: [ErrNotFound] (404);
// p invalid, or p.PolicyID neither empty nor id: [*FieldError] values joined
// (422); the name of another current policy: [*ConflictError] (409). A
// policy may keep, or change, its own role and name.
func Update(s *State, id string, p Policy, now time.Time) (PolicyUpdated, error) {
	set := s.Set()
	old, ok := set.ByID(id)
	if !ok {
		return PolicyUpdated{}, fmt.Errorf("%w: policy_id '%s'", ErrNotFound, id)
	}
	p = p.Clone()
	var fes []*FieldError
	if p.PolicyID != "" && p.PolicyID != id {
		fes = append(fes, &FieldError{
			Field:   "policy_id",
			Problem: fmt.Sprintf("must be empty or equal to the policy being updated ('%s'), got '%s'", id, p.PolicyID),
		})
	}
	fes = append(fes, p.commandErrors()...)
	if err := joinFieldErrors(fes); err != nil {
		return PolicyUpdated{}, err
	}
	p.PolicyID = id
	p.Version = old.version + 1
	p.CreatedAt = old.policy.CreatedAt
	p.UpdatedAt = now.UTC()
	if err := conflicts(set, p, id, "updated policy "); err != nil {
		return PolicyUpdated{}, err
	}
	return PolicyUpdated{Policy: p}, nil
}

// Delete decides the removal of the policy with policy_id id: [ErrNotFound]
// (404) if there is none. deleted_at is now (UTC). s is only read.
func Delete(s *State, id string, now time.Time) (PolicyDeleted, error) {
	old, ok := s.Set().ByID(id)
	if !ok {
		return PolicyDeleted{}, fmt.Errorf("%w: policy_id '%s'", ErrNotFound, id)
	}
	return deletedEvent(old, now), nil
}

func deletedEvent(c *Compiled, now time.Time) PolicyDeleted {
	return PolicyDeleted{
		PolicyID:  c.id,
		Name:      c.name,
		AgentRole: c.role,
		Version:   c.version,
		DeletedAt: now.UTC(),
	}
}

// conflicts reports every current policy other than the one with policy_id
// self that holds p's name, and (when self is empty, a new policy) one that
// holds p's policy_id. label introduces p in the message.
func conflicts(set *Set, p Policy, self, label string) error {
	var errs []error
	check := func(field, value string, c *Compiled, ok bool) {
		if !ok || (self != "" && c.id == self) {
			return
		}
		errs = append(errs, &ConflictError{
			Field: field, Value: value,
			First:  "existing policy " + describe(c.policy),
			Second: label + describe(p),
		})
	}
	c, ok := set.ByName(p.Name)
	check("name", p.Name, c, ok)
	if self == "" {
		c, ok = set.ByID(p.PolicyID)
		check("policy_id", p.PolicyID, c, ok)
	}
	return errors.Join(errs...)
}
