package policy

import (
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Sync decides the events that turn the current policies of s into desired
// (policy as code: desired is the complete set, for example every policy of
// a policy folder). s is only read; apply the events in the order returned
// ([State.ApplyAll] applies them at once).
//
// Validation: desired is checked with [ValidateSet], which reports every
// problem at once: [*FieldError] values (422) and duplicate name or
// policy_id within desired as [*ConflictError] values (409). Several desired
// policies may share an agent_role. The error is
// returned as is; when it holds both kinds, errors.Is matches both.
//
// Matching: a desired policy with a policy_id is the current policy with
// that id, or a new policy with that id if there is none. A desired policy
// without one is the current policy with the same name, unless that policy
// is already claimed by id by another desired policy; otherwise it is new
// and gets an id from newID (called only then; an empty or already used id
// is an error, HTTP 500). Renaming a policy therefore needs its policy_id in
// the desired set; without it, a rename is a delete plus a create.
//
// Differences only: policy.deleted for each current policy that no desired
// policy matches; policy.updated (version + 1, created_at kept, updated_at =
// now) for each matched policy whose content differs; policy.created
// (version 1, created_at = updated_at = now) for each new one. Content is
// compared exactly except for version, created_at and updated_at (which
// desired policies may carry, e.g. from an export, and which are ignored):
// an absent list differs from an empty one. Syncing the same desired set
// twice yields no events the second time.
//
// Order: deletes first (by name), then updates, then creates (in desired
// order), so that no event ever finds its name held by another policy.
// Updates run in desired order, except that an update waits until the
// policy holding its new name has moved away. When updates form a cycle
// (two policies swap names), Sync breaks it by
// recording policy.deleted for the first policy of the cycle in desired
// order and re-creating it, with the same policy_id, among the creates; that
// policy.created carries version = old + 1 and the original created_at, so
// versions never go back. Between those two events the policy is missing,
// so a reader of each intermediate state fails closed; ApplyAll publishes
// the whole batch at once.
//
// A name clash with a current policy that is kept is always a clash
// within desired (a kept policy is in desired), so it is reported by
// ValidateSet and matches [ErrConflict].
func Sync(s *State, desired []Policy, now time.Time, newID func() string) ([]Event, error) {
	if err := ValidateSet(desired); err != nil {
		return nil, err
	}
	now = now.UTC()
	set := s.Set()

	// Match desired policies to current ones: by policy_id, then by name.
	old := make([]*Compiled, len(desired))
	claimed := make(map[string]bool)
	for i, d := range desired {
		if c, ok := set.ByID(d.PolicyID); ok {
			old[i] = c
			claimed[c.id] = true
		}
	}
	for i, d := range desired {
		if d.PolicyID != "" {
			continue
		}
		if c, ok := set.ByName(d.Name); ok && !claimed[c.id] {
			old[i] = c
			claimed[c.id] = true
		}
	}

	// Ids in use: every current id (also of policies about to be deleted, so
	// that a deleted id is never reused by a new policy of the same sync) and
	// every id that desired gives.
	used := make(map[string]bool)
	for _, c := range set.All() {
		used[c.id] = true
	}
	for _, d := range desired {
		if d.PolicyID != "" {
			used[d.PolicyID] = true
		}
	}

	var (
		events  []Event
		want    = make([]Policy, len(desired))
		pending []int // indices of desired policies to update
		creates = make([]bool, len(desired))
	)
	for i, d := range desired {
		p := d.Clone()
		if c := old[i]; c != nil {
			p.PolicyID = c.id
			p.Version = c.version + 1
			p.CreatedAt = c.policy.CreatedAt
			p.UpdatedAt = now
			if sameContent(p, c.policy) {
				continue
			}
			want[i] = p
			pending = append(pending, i)
			continue
		}
		if p.PolicyID == "" {
			if newID == nil {
				return nil, errors.New("policy: sync: newID is nil but a new policy has no policy_id")
			}
			id := newID()
			if id == "" || used[id] {
				return nil, fmt.Errorf("policy: sync: newID returned '%s', which is empty or already in use", id)
			}
			used[id] = true
			p.PolicyID = id
		}
		p.Version = 1
		p.CreatedAt = now
		p.UpdatedAt = now
		want[i] = p
		creates[i] = true
	}

	// Deletes, and who holds each name afterwards.
	nameOf := make(map[string]string) // name -> policy_id
	for _, c := range s.List() {
		if !claimed[c.PolicyID] {
			cc, _ := set.ByID(c.PolicyID)
			events = append(events, deletedEvent(cc, now))
			continue
		}
		nameOf[c.Name] = c.PolicyID
	}

	// Updates: repeatedly emit every pending update whose name is
	// free; when none is, break the cycle at the first pending one.
	free := func(holders map[string]string, key, id string) bool {
		h, ok := holders[key]
		return !ok || h == id
	}
	move := func(c *Compiled, p *Policy) {
		if nameOf[c.name] == c.id {
			delete(nameOf, c.name)
		}
		if p != nil {
			nameOf[p.Name] = p.PolicyID
		}
	}
	for len(pending) > 0 {
		var rest []int
		for _, i := range pending {
			p := want[i]
			if free(nameOf, p.Name, p.PolicyID) {
				move(old[i], &p)
				events = append(events, PolicyUpdated{Policy: p})
				continue
			}
			rest = append(rest, i)
		}
		if len(rest) == len(pending) {
			i := rest[0]
			move(old[i], nil)
			events = append(events, deletedEvent(old[i], now))
			creates[i] = true
			rest = rest[1:]
		}
		pending = rest
	}

	for i, p := range want {
		if creates[i] {
			events = append(events, PolicyCreated{Policy: p})
		}
	}

	// Self-check: the events must apply in order to s.
	check := set
	for _, ev := range events {
		var err error
		if check, err = fold(check, ev); err != nil {
			return nil, fmt.Errorf("policy: sync produced an event that does not apply (bug): %w", err)
		}
	}
	return events, nil
}

// sameContent reports whether a and b are equal apart from version,
// created_at and updated_at. Nil and empty lists differ.
func sameContent(a, b Policy) bool {
	a.Version, b.Version = 0, 0
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
