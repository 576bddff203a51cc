package alerts

import (
	"fmt"
	"maps"
	"slices"
)

// State is the alert table folded from the log: the rules in force and the
// dedupe keys of the once-only alerts already raised. The zero value is
// the empty state. Not safe for concurrent mutation.
type State struct {
	rules  map[string]Rule
	raised map[string]uint64 // dedupe key -> seq of the alert that took it
	count  uint64            // alerts raised
}

// Apply folds e, recorded at seq, into s. It never re-runs command rules;
// an event that does not fit (a delete of an unknown rule, an alert with a
// taken dedupe key) returns ErrInconsistent and leaves s unchanged.
func (s *State) Apply(seq uint64, e Event) error {
	switch ev := e.(type) {
	case RuleSet:
		if ev.Rule.RuleID == "" {
			return fmt.Errorf("%w: rule without rule_id", ErrInconsistent)
		}
		if s.rules == nil {
			s.rules = map[string]Rule{}
		}
		s.rules[ev.Rule.RuleID] = ev.Rule.clone()
	case RuleDeleted:
		if _, ok := s.rules[ev.RuleID]; !ok {
			return fmt.Errorf("%w: delete of unknown rule %q", ErrInconsistent, ev.RuleID)
		}
		delete(s.rules, ev.RuleID)
	case Raised:
		if ev.DedupeKey != "" {
			if _, taken := s.raised[ev.DedupeKey]; taken {
				return fmt.Errorf("%w: alert %q raised twice", ErrInconsistent, ev.DedupeKey)
			}
			if s.raised == nil {
				s.raised = map[string]uint64{}
			}
			s.raised[ev.DedupeKey] = seq
		}
		s.count++
	case *RuleSet:
		return s.Apply(seq, *ev)
	case *RuleDeleted:
		return s.Apply(seq, *ev)
	case *Raised:
		return s.Apply(seq, *ev)
	default:
		return fmt.Errorf("%w: %T", ErrUnknownEvent, e)
	}
	return nil
}

// Rule returns the rule with id.
func (s *State) Rule(id string) (Rule, bool) {
	r, ok := s.rules[id]
	return r.clone(), ok
}

// Rules returns every rule in force, sorted by rule_id.
func (s *State) Rules() []Rule {
	out := make([]Rule, 0, len(s.rules))
	for _, id := range slices.Sorted(maps.Keys(s.rules)) {
		out = append(out, s.rules[id].clone())
	}
	return out
}

// Raised reports whether a once-only alert with dedupe key k was raised,
// and the seq of its record.
func (s *State) Raised(k string) (seq uint64, ok bool) {
	seq, ok = s.raised[k]
	return seq, ok
}

// Count returns how many alerts were raised.
func (s *State) Count() uint64 { return s.count }

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{raised: maps.Clone(s.raised), count: s.count}
	if s.rules != nil {
		c.rules = make(map[string]Rule, len(s.rules))
		for id, r := range s.rules {
			c.rules[id] = r.clone()
		}
	}
	return c
}
