package policy

import (
	"fmt"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes, including
// when Policy gains a field.
const SnapshotVersion = 1

// MarshalSnapshot encodes the current policies of s in the order of
// [Set.All] (insertion order, which the state exposes, so it is kept rather
// than sorted; equal states still give equal bytes). Every field of every
// Policy is written, nil lists apart from empty ones. It only reads s.
func (s *State) MarshalSnapshot() ([]byte, error) {
	set := s.Set()
	w := wire.NewWriter(64 + 1024*set.Len())
	w.Uvarint(SnapshotVersion)
	w.Bool(set != nil)
	all := set.All()
	w.Uvarint(uint64(len(all)))
	for _, c := range all {
		putPolicy(w, &c.policy)
	}
	return w.Bytes(), nil
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot, compiling every policy again. It fails, leaving s
// unchanged, on a version other than SnapshotVersion, on bytes that do not
// decode, or on policies that do not compile or conflict.
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("policy", SnapshotVersion)
	present := r.Bool()
	n := r.Len(r.Uvarint(), 8)
	cs := make([]*Compiled, 0, n)
	for range n {
		p := getPolicy(r)
		if r.Err() != nil {
			break
		}
		c, err := Compile(p)
		if err != nil {
			r.Fail("policy %q: %v", p.PolicyID, err)
			break
		}
		cs = append(cs, c)
	}
	var set *Set
	if r.Err() == nil && present {
		set = restoreSet(r, cs)
	} else if len(cs) > 0 {
		r.Fail("policies in an absent set")
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("policy: restore snapshot: %w", err)
	}
	s.set.Store(set)
	return nil
}

// restoreSet builds the set of cs in their order, in linear time (NewSet
// would re-validate every policy and copy the set once per policy). Two
// policies sharing a name or policy_id are corrupt.
func restoreSet(r *wire.Reader, cs []*Compiled) *Set {
	set := &Set{
		byRole: make(map[string][]*Compiled, len(cs)),
		byName: make(map[string]*Compiled, len(cs)),
		byID:   make(map[string]*Compiled, len(cs)),
		all:    make([]*Compiled, 0, len(cs)),
	}
	for _, c := range cs {
		_, dupName := set.byName[c.name]
		_, dupID := set.byID[c.id]
		if dupName || (c.id != "" && dupID) {
			r.Fail("policy %q: name or policy_id of another policy", c.id)
			return nil
		}
		set.add(c)
	}
	return set
}

func putPolicy(w *wire.Writer, p *Policy) {
	w.String(p.Name)
	w.String(p.PolicyID)
	w.String(p.AgentRole)
	w.String(p.Description)
	w.String(p.Industry)
	w.String(p.Organization)
	w.String(p.Division)
	w.String(p.ProcessGroup)
	w.Count(len(p.Regulations), p.Regulations == nil)
	for _, reg := range p.Regulations {
		w.String(reg.ID)
		w.String(reg.Name)
		w.Count(len(reg.ApplicableRules), reg.ApplicableRules == nil)
		for _, rule := range reg.ApplicableRules {
			w.String(rule.Rule)
			w.String(rule.HowEnforced)
		}
	}
	wire.PutStrings(w, p.PermittedAgentIDs)
	wire.PutStrings(w, p.AllowedSources)
	wire.PutStrings(w, p.DeniedSources)
	wire.PutStrings(w, p.AllowedTasks)
	wire.PutStrings(w, p.DeniedTasks)
	putLevelPtr(w, p.MaxSensitivity)
	putLevelPtr(w, p.RequireTaskForSensitivity)
	w.Count(len(p.TaskBindings), p.TaskBindings == nil)
	for _, tb := range p.TaskBindings {
		w.String(tb.Task)
		wire.PutStrings(w, tb.PermittedSources)
		wire.PutStrings(w, tb.Actions)
	}
	wire.PutStrings(w, p.AllowedActions)
	wire.PutStrings(w, p.DeniedActions)
	w.Bool(p.SessionTTLMinutes != nil)
	if p.SessionTTLMinutes != nil {
		w.Int(*p.SessionTTLMinutes)
	}
	w.Count(len(p.SensitivityDecay), p.SensitivityDecay == nil)
	for _, d := range p.SensitivityDecay {
		w.Int(d.AfterMinutes)
		w.String(string(d.MaxSensitivity))
	}
	w.Count(len(p.RequirePrincipalEntitlements), p.RequirePrincipalEntitlements == nil)
	for _, e := range p.RequirePrincipalEntitlements {
		wire.PutStrings(w, e.Sources)
		wire.PutStrings(w, e.Actions)
		wire.PutStrings(w, e.RequireAny)
		wire.PutStrings(w, e.RequireAll)
	}
	w.Int(p.Version)
	w.Time(p.CreatedAt)
	w.Time(p.UpdatedAt)
}

func getPolicy(r *wire.Reader) Policy {
	p := Policy{
		Name:         r.String(),
		PolicyID:     r.String(),
		AgentRole:    r.String(),
		Description:  r.String(),
		Industry:     r.String(),
		Organization: r.String(),
		Division:     r.String(),
		ProcessGroup: r.String(),
	}
	if n, isNil := r.Count(3); !isNil {
		p.Regulations = make([]Regulation, n)
		for i := range p.Regulations {
			reg := &p.Regulations[i]
			reg.ID = r.String()
			reg.Name = r.String()
			if m, isNil := r.Count(2); !isNil {
				reg.ApplicableRules = make([]RegulationRule, m)
				for j := range reg.ApplicableRules {
					reg.ApplicableRules[j] = RegulationRule{Rule: r.String(), HowEnforced: r.String()}
				}
			}
		}
	}
	p.PermittedAgentIDs = wire.GetStrings[string](r)
	p.AllowedSources = wire.GetStrings[string](r)
	p.DeniedSources = wire.GetStrings[string](r)
	p.AllowedTasks = wire.GetStrings[string](r)
	p.DeniedTasks = wire.GetStrings[string](r)
	p.MaxSensitivity = getLevelPtr(r)
	p.RequireTaskForSensitivity = getLevelPtr(r)
	if n, isNil := r.Count(3); !isNil {
		p.TaskBindings = make([]TaskBinding, n)
		for i := range p.TaskBindings {
			p.TaskBindings[i] = TaskBinding{
				Task:             r.String(),
				PermittedSources: wire.GetStrings[string](r),
				Actions:          wire.GetStrings[Action](r),
			}
		}
	}
	p.AllowedActions = wire.GetStrings[Action](r)
	p.DeniedActions = wire.GetStrings[Action](r)
	if r.Bool() {
		ttl := r.Int()
		p.SessionTTLMinutes = &ttl
	}
	if n, isNil := r.Count(2); !isNil {
		p.SensitivityDecay = make([]DecayStep, n)
		for i := range p.SensitivityDecay {
			p.SensitivityDecay[i] = DecayStep{AfterMinutes: r.Int(), MaxSensitivity: Level(r.String())}
		}
	}
	if n, isNil := r.Count(4); !isNil {
		p.RequirePrincipalEntitlements = make([]EntitlementRule, n)
		for i := range p.RequirePrincipalEntitlements {
			p.RequirePrincipalEntitlements[i] = EntitlementRule{
				Sources:    wire.GetStrings[string](r),
				Actions:    wire.GetStrings[Action](r),
				RequireAny: wire.GetStrings[string](r),
				RequireAll: wire.GetStrings[string](r),
			}
		}
	}
	p.Version = r.Int()
	p.CreatedAt = r.Time()
	p.UpdatedAt = r.Time()
	return p
}

func putLevelPtr(w *wire.Writer, l *Level) {
	w.Bool(l != nil)
	if l != nil {
		w.String(string(*l))
	}
}

func getLevelPtr(r *wire.Reader) *Level {
	if !r.Bool() {
		return nil
	}
	l := Level(r.String())
	return &l
}
