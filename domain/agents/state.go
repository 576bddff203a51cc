package agents

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/custos-dev/custos/domain/internal/cow"
)

// State is the agent registry projection: every agent ever registered,
// retired ones included, by agent_id. The zero State is empty and ready to
// use. See the package doc for the concurrency contract: Apply must be
// serialized by the caller.
type State struct {
	// byID is copy-on-write, so that FrozenCopy costs O(shards). Apply
	// never changes an *Agent in place: every change stores a new one, so
	// agents shared with a frozen copy stay as they were.
	byID cow.Map[string, *Agent, cow.String]
}

// Filter selects agents in List. An empty Framework or Owner matches every
// agent; a non-empty one must equal the agent's field exactly. An empty
// Status matches every agent that is not retired (retired agents are kept
// for history, not listed); a non-empty one, "retired" included, must equal
// the agent's status. AllStatuses matches every status.
type Filter struct {
	Framework string
	Owner     string
	Status    string
	// AllStatuses lists agents of every status, retired ones included; it
	// overrides Status.
	AllStatuses bool
}

func (f Filter) match(a *Agent) bool {
	status := f.AllStatuses ||
		(f.Status == "" && a.Status != StatusRetired) ||
		(f.Status != "" && string(a.Status) == f.Status)
	return status && (f.Framework == "" || a.Framework == f.Framework) &&
		(f.Owner == "" || a.Owner == f.Owner)
}

// ByID returns a copy of the agent with the given agent_id. Changing the
// copy (including its PermittedRoles) does not change the State.
func (s *State) ByID(id string) (Agent, bool) {
	a, ok := s.byID.Get(id)
	if !ok {
		return Agent{}, false
	}
	return a.clone(), true
}

// Len returns the number of agents, retired ones included.
func (s *State) Len() int { return s.byID.Len() }

// List returns copies of the agents that match filter, oldest first: by
// CreatedAt ascending, then by AgentID ascending (ids are unique, so the
// order is total and the same on every replica and after every replay). An
// unknown Status in the filter matches nothing; callers that want a 422
// check it with ParseStatus first.
func (s *State) List(filter Filter) []Agent {
	out := make([]Agent, 0, s.byID.Len())
	for _, a := range s.byID.All() {
		if filter.match(a) {
			out = append(out, a.clone())
		}
	}
	slices.SortFunc(out, func(a, b Agent) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.AgentID, b.AgentID)
	})
	return out
}

// Clone returns a deep copy of s that shares nothing with it, for
// point-in-time replay. It costs a copy of every agent; a snapshot takes a
// FrozenCopy instead.
func (s *State) Clone() *State {
	c := &State{}
	for id, a := range s.byID.All() {
		cp := a.clone()
		c.byID.Set(id, &cp)
	}
	return c
}

// FrozenCopy returns a copy of s in O(shards), for a snapshot to encode on
// another goroutine while s keeps applying events: the two share their
// agents (which Apply never changes in place), and s copies a shard of its
// map on the first write to it. The copy must only be read. FrozenCopy
// changes s's bookkeeping, so call it where no Apply and no read of s can
// run.
func (s *State) FrozenCopy() *State {
	return &State{byID: s.byID.Clone()}
}

// Apply folds one event into s. It is the one fold for live state, start-up
// replay and point-in-time replay. It checks structural sanity only and
// never re-runs command rules (field validation, policy resolution, legal
// transitions):
//
//   - agent.registered: agent_id and agent_role are present, the agent_id
//     is new, status is draft, created_at, updated_at and status_changed_at
//     are present.
//   - agent.updated: the agent_id exists, agent_role and updated_at are
//     present, and status, created_at and status_changed_at equal the
//     current ones (an update never changes them).
//   - agent.status_changed: the agent_id exists, from equals the current
//     status, to is a known status, changed_at is present. Whether the
//     transition is legal is a command rule and is not checked.
//
// Times are stored in UTC and an empty permitted_roles as nil. On error
// (wrapping ErrInconsistent or ErrUnknownEvent) s is unchanged.
func (s *State) Apply(ev Event) error {
	switch e := ev.(type) {
	case AgentRegistered:
		a := normalise(e.Agent)
		if err := checkAgent(e, a); err != nil {
			return err
		}
		if _, dup := s.byID.Get(a.AgentID); dup {
			return inconsistent(e, a.AgentID, "agent_id already exists")
		}
		if a.Status != StatusDraft {
			return inconsistent(e, a.AgentID, fmt.Sprintf("status must be draft, got '%s'", a.Status))
		}
		if a.CreatedAt.IsZero() || a.StatusChangedAt.IsZero() {
			return inconsistent(e, a.AgentID, "created_at and status_changed_at are required")
		}
		s.byID.Set(a.AgentID, &a)
	case AgentUpdated:
		a := normalise(e.Agent)
		if err := checkAgent(e, a); err != nil {
			return err
		}
		old, ok := s.byID.Get(a.AgentID)
		if !ok {
			return inconsistent(e, a.AgentID, "unknown agent_id")
		}
		if a.Status != old.Status {
			return inconsistent(e, a.AgentID, fmt.Sprintf("status '%s' differs from the current status '%s'", a.Status, old.Status))
		}
		if !a.CreatedAt.Equal(old.CreatedAt) || !a.StatusChangedAt.Equal(old.StatusChangedAt) {
			return inconsistent(e, a.AgentID, "created_at and status_changed_at must not change")
		}
		s.byID.Set(a.AgentID, &a)
	case AgentStatusChanged:
		old, ok := s.byID.Get(e.AgentID)
		if !ok {
			return inconsistent(e, e.AgentID, "unknown agent_id")
		}
		if e.From != old.Status {
			return inconsistent(e, e.AgentID, fmt.Sprintf("from '%s' differs from the current status '%s'", e.From, old.Status))
		}
		if !e.To.Valid() {
			return inconsistent(e, e.AgentID, fmt.Sprintf("unknown status '%s'", e.To))
		}
		if e.ChangedAt.IsZero() {
			return inconsistent(e, e.AgentID, "changed_at is missing")
		}
		t := e.ChangedAt.UTC()
		a := *old // PermittedRoles is never changed in place either
		a.Status = e.To
		a.UpdatedAt = t
		a.StatusChangedAt = t
		s.byID.Set(a.AgentID, &a)
	default:
		return fmt.Errorf("agents: apply %T: %w", ev, ErrUnknownEvent)
	}
	return nil
}

// normalise returns a copy of a as the State stores it: times in UTC, an
// empty permitted_roles as nil, no memory shared with a.
func normalise(a Agent) Agent {
	a = a.clone()
	a.CreatedAt = a.CreatedAt.UTC()
	a.UpdatedAt = a.UpdatedAt.UTC()
	a.StatusChangedAt = a.StatusChangedAt.UTC()
	return a
}

// checkAgent checks the fields every agent in an event must have.
func checkAgent(ev Event, a Agent) error {
	switch {
	case a.AgentID == "":
		return inconsistent(ev, a.AgentID, "agent_id is missing")
	case a.AgentRole == "":
		return inconsistent(ev, a.AgentID, "agent_role is missing")
	case !a.Status.Valid():
		return inconsistent(ev, a.AgentID, fmt.Sprintf("unknown status '%s'", a.Status))
	case a.UpdatedAt.IsZero():
		return inconsistent(ev, a.AgentID, "updated_at is missing")
	}
	return nil
}

func inconsistent(ev Event, id, problem string) error {
	return fmt.Errorf("%w: %s '%s': %s", ErrInconsistent, ev.EventType(), id, problem)
}
