package policy

import (
	"errors"
	"fmt"
)

// ErrUnknownLevel reports a sensitivity level name that is not one of low,
// medium, high or critical.
var ErrUnknownLevel = errors.New("policy: unknown sensitivity level")

// ErrUnknownAction reports an action name that is not one of read, write or
// delete.
var ErrUnknownAction = errors.New("policy: unknown action")

// Level is a data sensitivity level. The valid levels are ordered
// [LevelLow] < [LevelMedium] < [LevelHigh] < [LevelCritical] and are written
// in lowercase. Level is a string so that decoding a policy file never fails
// on a misspelt level: [Policy.Validate] reports it together with every other
// problem. Use [ParseLevel] or [Level.Valid] to check a level from a request.
type Level string

// The sensitivity levels, lowest first.
const (
	LevelLow      Level = "low"
	LevelMedium   Level = "medium"
	LevelHigh     Level = "high"
	LevelCritical Level = "critical"
)

// DefaultMaxSensitivity is the ceiling of a policy without max_sensitivity.
const DefaultMaxSensitivity = LevelHigh

// rankInvalid ranks an unknown level above every valid one, so that an
// unchecked request with a bad level fails closed at every ceiling.
const rankInvalid = 5

// ParseLevel returns the level named s (lowercase, exact) or an error
// matching [ErrUnknownLevel].
func ParseLevel(s string) (Level, error) {
	l := Level(s)
	if !l.Valid() {
		return "", fmt.Errorf("parse %q: %w", s, ErrUnknownLevel)
	}
	return l, nil
}

// Valid reports whether l is one of the four levels.
func (l Level) Valid() bool { return l.rank() != rankInvalid }

// rank orders levels: low 1, medium 2, high 3, critical 4, anything else
// rankInvalid.
func (l Level) rank() int {
	switch l {
	case LevelLow:
		return 1
	case LevelMedium:
		return 2
	case LevelHigh:
		return 3
	case LevelCritical:
		return 4
	}
	return rankInvalid
}

// Compare returns -1, 0 or +1 as l is lower than, equal to or higher than o.
// An unknown level compares above every valid level and equal to any other
// unknown level.
func (l Level) Compare(o Level) int {
	a, b := l.rank(), o.rank()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String returns the lowercase name of l (the stored text, even if unknown).
func (l Level) String() string { return string(l) }

// MarshalText returns the lowercase name of l.
func (l Level) MarshalText() ([]byte, error) { return []byte(l), nil }

// UnmarshalText stores text verbatim. It never fails: validity is checked by
// [Policy.Validate] (so that every problem is reported at once) and, for
// requests, by the caller with [Level.Valid].
func (l *Level) UnmarshalText(text []byte) error {
	*l = Level(text)
	return nil
}

// Action is what a request does to a source: [ActionRead], [ActionWrite] or
// [ActionDelete], lowercase. Like [Level] it is a string so that decoding
// never fails and validation reports every problem at once.
type Action string

// The actions.
const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionDelete Action = "delete"
)

// DefaultAction is the action of a request without one.
const DefaultAction = ActionRead

// ParseAction returns the action named s (lowercase, exact) or an error
// matching [ErrUnknownAction].
func ParseAction(s string) (Action, error) {
	a := Action(s)
	if !a.Valid() {
		return "", fmt.Errorf("parse %q: %w", s, ErrUnknownAction)
	}
	return a, nil
}

// Valid reports whether a is one of the three actions.
func (a Action) Valid() bool { return a.bit() != 0 }

// bit is a's bit in an actionSet, 0 for an unknown action.
func (a Action) bit() actionSet {
	switch a {
	case ActionRead:
		return 1
	case ActionWrite:
		return 2
	case ActionDelete:
		return 4
	}
	return 0
}

// String returns the lowercase name of a (the stored text, even if unknown).
func (a Action) String() string { return string(a) }

// MarshalText returns the lowercase name of a.
func (a Action) MarshalText() ([]byte, error) { return []byte(a), nil }

// UnmarshalText stores text verbatim. It never fails: validity is checked by
// [Policy.Validate] and, for requests, by the caller with [Action.Valid].
func (a *Action) UnmarshalText(text []byte) error {
	*a = Action(text)
	return nil
}

// actionSet is a bitset of actions.
type actionSet uint8

// has reports whether a is in s; an unknown action is in no set.
func (s actionSet) has(a Action) bool {
	b := a.bit()
	return b != 0 && s&b != 0
}

func actionSetOf(as []Action) actionSet {
	var s actionSet
	for _, a := range as {
		s |= a.bit()
	}
	return s
}
