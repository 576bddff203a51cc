package alerts

import (
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain/text"
)

// SetRule decides the events that make r a rule in force at now: none when
// an equal rule is already set (setting a rule twice appends nothing), else
// one RuleSet. An invalid r returns Validate's error.
func SetRule(s *State, r Rule, now time.Time) ([]Event, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if old, ok := s.rules[r.RuleID]; ok && old.Equal(r) {
		return nil, nil
	}
	return []Event{RuleSet{Rule: r.clone(), SetAt: now.UTC()}}, nil
}

// DeleteRule decides the deletion of rule id at now, or ErrNotFound.
func DeleteRule(s *State, id string, now time.Time) ([]Event, error) {
	if _, ok := s.rules[id]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return []Event{RuleDeleted{RuleID: id, DeletedAt: now.UTC()}}, nil
}

// ErrInvalidAlert reports an alert without its required fields.
var ErrInvalidAlert = errors.New("alerts: invalid alert")

// Raise decides the record of alert a at now (a.RaisedAt is set to now):
// none when a is once-only (a.DedupeKey set) and an alert with that key was
// raised before, else one Raised. The rule need not be in force: the
// built-in verify and store alerts have no stored rule.
func Raise(s *State, a Raised, now time.Time) ([]Event, error) {
	var errs []error
	for field, v := range map[string]string{"alert_id": a.AlertID, "rule_id": a.RuleID, "kind": a.Kind} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%w: %s is required", ErrInvalidAlert, field))
		}
	}
	if err := text.FreeText(a.Detail); err != nil {
		errs = append(errs, fmt.Errorf("%w: detail: %w", ErrInvalidAlert, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if a.DedupeKey != "" {
		if _, taken := s.raised[a.DedupeKey]; taken {
			return nil, nil
		}
	}
	a.RaisedAt = now.UTC()
	return []Event{a}, nil
}
