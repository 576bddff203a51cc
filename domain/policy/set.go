package policy

// Set is an immutable index of compiled policies by agent_role, name and
// policy_id. Names and non-empty policy_ids are unique; a role may have
// several policies (see [Set.Resolve]). It is safe for concurrent use;
// [Set.With] and [Set.Without] return new sets (copy-on-write) and never
// change the receiver, so a reader may hold a snapshot without locks. A nil
// *Set is a valid empty set.
type Set struct {
	byRole map[string][]*Compiled // insertion order within a role
	byName map[string]*Compiled
	byID   map[string]*Compiled
	all    []*Compiled // insertion order
}

// NewSet builds a set from cs. It fails with a [*ConflictError] (matching
// [ErrConflict]) if two of them share a name or a non-empty policy_id,
// reporting every conflict at once.
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

// ByRole returns the only policy of role: ok is false when role has no
// policy or several (see [Set.RolePolicies] and [Set.Resolve]).
func (s *Set) ByRole(role string) (*Compiled, bool) {
	if s == nil {
		return nil, false
	}
	if cs := s.byRole[role]; len(cs) == 1 {
		return cs[0], true
	}
	return nil, false
}

// RolePolicies returns the policies whose agent_role is role, in insertion
// order. The slice is a copy.
func (s *Set) RolePolicies(role string) []*Compiled {
	if s == nil {
		return nil
	}
	return append([]*Compiled(nil), s.byRole[role]...)
}

// Resolution rules: stable wire values of [Resolution.Rule], append-only.
const (
	// ResolvedBound: the agent's bound policy (by policy_id or policy_name).
	ResolvedBound = "bound"
	// ResolvedRole: the only policy of the agent's role.
	ResolvedRole = "role"
)

// Resolution is the outcome of [Set.Resolve].
type Resolution struct {
	// Policy is the governing policy; nil when none resolves.
	Policy *Compiled
	// Rule is [ResolvedBound] or [ResolvedRole]; "" when Policy is nil.
	Rule string
	// RolePolicies is how many policies the role has (meaningful when
	// Policy is nil: 0 means no policy, more than 1 means ambiguous).
	RolePolicies int
}

// Resolve finds the policy that governs an agent of role bound to policy
// boundID and/or boundName (either may be empty), in this order:
//
//  1. the bound policy: the policy with policy_id boundID, else the policy
//     named boundName, when one exists (rule [ResolvedBound]);
//  2. otherwise the role's only policy (rule [ResolvedRole]);
//  3. otherwise none: the role has no policy, or several and the binding
//     does not resolve. The caller denies (default_deny or
//     policy_ambiguous); Resolve never picks one of several.
//
// A binding is looked up when the request is evaluated, so a policy created
// later under a bound name takes effect at once, and a bound policy deleted
// later falls back to rules 2 and 3.
func (s *Set) Resolve(role, boundID, boundName string) Resolution {
	if c, ok := s.ByID(boundID); ok {
		return Resolution{Policy: c, Rule: ResolvedBound, RolePolicies: s.roleCount(role)}
	}
	if boundName != "" {
		if c, ok := s.ByName(boundName); ok {
			return Resolution{Policy: c, Rule: ResolvedBound, RolePolicies: s.roleCount(role)}
		}
	}
	n := s.roleCount(role)
	if n == 1 {
		return Resolution{Policy: s.byRole[role][0], Rule: ResolvedRole, RolePolicies: 1}
	}
	return Resolution{RolePolicies: n}
}

func (s *Set) roleCount(role string) int {
	if s == nil {
		return 0
	}
	return len(s.byRole[role])
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
// other than c's own previous version: one with the same name but a
// different policy_id, or any policy with the same name when c has no
// policy_id. It returns a [*ConflictError] for such a clash, or nil. The
// service calls it before With to answer 409. Sharing an agent_role is not
// a conflict.
func (s *Set) Conflict(c *Compiled) error {
	if s == nil {
		return nil
	}
	old, ok := s.byName[c.name]
	if !ok || (c.id != "" && old.id == c.id) {
		return nil
	}
	return &ConflictError{
		Field: "name", Value: c.name,
		First:  "existing policy " + describe(old.policy),
		Second: "new policy " + describe(c.policy),
	}
}

// With returns a new set holding c and every policy of s except those c
// replaces: any policy with c's policy_id (an update, possibly renamed or
// re-roled), and any policy with c's name. Check [Set.Conflict] first when
// displacing a different policy is an error.
func (s *Set) With(c *Compiled) *Set {
	n := &Set{
		byRole: make(map[string][]*Compiled, s.Len()+1),
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
		case old.name == c.name:
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
		byRole: make(map[string][]*Compiled, s.Len()),
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
	s.byRole[c.role] = append(s.byRole[c.role], c)
	s.byName[c.name] = c
	if c.id != "" {
		s.byID[c.id] = c
	}
	s.all = append(s.all, c)
}
