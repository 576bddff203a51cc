package policy

// Set is an immutable index of compiled policies by agent_role, name and
// policy_id. It is safe for concurrent use; [Set.With] and [Set.Without]
// return new sets (copy-on-write) and never change the receiver, so a reader
// may hold a snapshot without locks. A nil *Set is a valid empty set.
type Set struct {
	byRole map[string]*Compiled
	byName map[string]*Compiled
	byID   map[string]*Compiled
	all    []*Compiled // insertion order
}

// NewSet builds a set from cs. It fails with a [*ConflictError] (matching
// [ErrConflict]) if two of them share an agent_role, a name or a non-empty
// policy_id, reporting every conflict at once.
func NewSet(cs ...*Compiled) (*Set, error) {
	ps := make([]Policy, len(cs))
	for i, c := range cs {
		ps[i] = c.policy
	}
	if err := ValidateSet(ps); err != nil {
		return nil, err
	}
	s := &Set{}
	for _, c := range cs {
		s = s.With(c)
	}
	return s, nil
}

// ByRole returns the policy governing role.
func (s *Set) ByRole(role string) (*Compiled, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.byRole[role]
	return c, ok
}

// ByName returns the policy named name (an agent's bound policy_name).
func (s *Set) ByName(name string) (*Compiled, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.byName[name]
	return c, ok
}

// ByID returns the policy with policy_id id; policies without an id are not
// indexed by id.
func (s *Set) ByID(id string) (*Compiled, bool) {
	if s == nil || id == "" {
		return nil, false
	}
	c, ok := s.byID[id]
	return c, ok
}

// Len is the number of policies in s.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// All returns the policies of s in insertion order (a replaced policy keeps
// its predecessor's place only if it had the same policy_id). The slice is
// a copy.
func (s *Set) All() []*Compiled {
	if s == nil {
		return nil
	}
	return append([]*Compiled(nil), s.all...)
}

// Conflict reports whether adding c with [Set.With] would displace a policy
// other than c's own previous version: one with the same agent_role or name
// but a different policy_id, or any policy with the same role or name when c
// has no policy_id. It returns a [*ConflictError] for the first such clash,
// or nil. The service calls it before With to answer 409.
func (s *Set) Conflict(c *Compiled) error {
	if s == nil {
		return nil
	}
	for _, f := range []struct {
		field, value string
		m            map[string]*Compiled
	}{{"agent_role", c.role, s.byRole}, {"name", c.name, s.byName}} {
		old, ok := f.m[f.value]
		if !ok || (c.id != "" && old.id == c.id) {
			continue
		}
		return &ConflictError{
			Field: f.field, Value: f.value,
			First:  "existing policy " + describe(old.policy),
			Second: "new policy " + describe(c.policy),
		}
	}
	return nil
}

// With returns a new set holding c and every policy of s except those c
// replaces: any policy with c's policy_id (an update, possibly renamed or
// re-roled), and any policy with c's agent_role or name. Check
// [Set.Conflict] first when displacing a different policy is an error.
func (s *Set) With(c *Compiled) *Set {
	n := &Set{
		byRole: make(map[string]*Compiled, s.Len()+1),
		byName: make(map[string]*Compiled, s.Len()+1),
		byID:   make(map[string]*Compiled, s.Len()+1),
		all:    make([]*Compiled, 0, s.Len()+1),
	}
	placed := false
	for _, old := range s.All() {
		switch {
		case c.id != "" && old.id == c.id:
			if !placed {
				n.add(c)
				placed = true
			}
		case old.role == c.role, old.name == c.name:
			// displaced
		default:
			n.add(old)
		}
	}
	if !placed {
		n.add(c)
	}
	return n
}

// Without returns a new set without the policy whose policy_id is id; if
// there is none it returns s itself.
func (s *Set) Without(id string) *Set {
	old, ok := s.ByID(id)
	if !ok {
		return s
	}
	n := &Set{
		byRole: make(map[string]*Compiled, s.Len()),
		byName: make(map[string]*Compiled, s.Len()),
		byID:   make(map[string]*Compiled, s.Len()),
		all:    make([]*Compiled, 0, s.Len()),
	}
	for _, c := range s.all {
		if c != old {
			n.add(c)
		}
	}
	return n
}

func (s *Set) add(c *Compiled) {
	s.byRole[c.role] = c
	s.byName[c.name] = c
	if c.id != "" {
		s.byID[c.id] = c
	}
	s.all = append(s.all, c)
}
