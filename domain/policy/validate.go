package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/custos-dev/custos/domain/text"
)

// ErrInvalidPolicy is matched (with [errors.Is]) by every [*FieldError].
var ErrInvalidPolicy = errors.New("policy: invalid policy")

// ErrConflict is matched (with [errors.Is]) by every [*ConflictError]: two
// policies share a name or a policy_id.
var ErrConflict = errors.New("policy: conflicting policies")

// FieldError is one problem with one field of a policy.
type FieldError struct {
	// Field is the path of the field, e.g. "task_bindings[1].actions[0]";
	// within [ValidateSet] it is prefixed with "policies[i].".
	Field string
	// Problem says what is wrong, e.g. "unknown action 'exec'".
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character
	// (errors.Is(err, text.ErrRefused)).
	Err error
}

// Error returns "policy: {field}: {problem}".
func (e *FieldError) Error() string { return "policy: " + e.Field + ": " + e.Problem }

// Is reports whether target is [ErrInvalidPolicy].
func (e *FieldError) Is(target error) bool { return target == ErrInvalidPolicy }

// Unwrap returns the cause, or nil.
func (e *FieldError) Unwrap() error { return e.Err }

// ConflictError reports two policies that share a value that must be unique.
type ConflictError struct {
	// Field is "name" or "policy_id".
	Field string
	// Value is the shared value.
	Value string
	// First and Second describe the two policies, e.g.
	// "policies[0] (name 'a', policy_id 'p1')".
	First, Second string
}

// Error names the field, the value and both policies.
func (e *ConflictError) Error() string {
	return "policy: duplicate " + e.Field + " '" + e.Value + "': " + e.First + " and " + e.Second
}

// Is reports whether target is [ErrConflict].
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Validate checks p and reports every problem at once: nil if p is valid,
// otherwise an [errors.Join] of [*FieldError] values in field order. It
// checks that name and agent_role are present; that every level is one of
// the four levels and every action one of the three; that list entries are
// not empty strings; that permitted_agent_ids patterns are valid globs; that
// session_ttl_minutes is positive; that sensitivity_decay steps have a level
// and strictly increasing, non-negative after_minutes; that each task binding
// has a task (unique in the policy) and permitted_sources; and that each
// entitlement rule has sources and at least one of require_any/require_all.
// After those, it reports every string with a refused character (see
// textErrors). Other metadata and server-managed fields are not checked.
func (p Policy) Validate() error { return joinFieldErrors(p.commandErrors()) }

// commandErrors are the errors of a policy a client or a policy file
// submits: fieldErrors, then textErrors. Compile checks fieldErrors only, so
// that a policy stored before the character rule still replays.
func (p Policy) commandErrors() []*FieldError { return append(p.fieldErrors(), p.textErrors()...) }

// ValidateSet validates every policy (field paths prefixed "policies[i].")
// and also rejects two policies with the same name or the same non-empty
// policy_id, with a [*ConflictError] naming both. Several policies may share
// an agent_role. It reports every problem at once.
func ValidateSet(ps []Policy) error {
	var errs []error
	for i, p := range ps {
		prefix := "policies[" + strconv.Itoa(i) + "]."
		for _, fe := range p.commandErrors() {
			errs = append(errs, &FieldError{Field: prefix + fe.Field, Problem: fe.Problem, Err: fe.Err})
		}
	}
	type key struct{ field, value string }
	seen := make(map[key]int)
	for i, p := range ps {
		for _, k := range []key{{"name", p.Name}, {"policy_id", p.PolicyID}} {
			if k.value == "" {
				continue // reported as required, or generated later
			}
			if j, ok := seen[k]; ok {
				errs = append(errs, &ConflictError{
					Field: k.field, Value: k.value,
					First:  "policies[" + strconv.Itoa(j) + "] " + describe(ps[j]),
					Second: "policies[" + strconv.Itoa(i) + "] " + describe(p),
				})
				continue
			}
			seen[k] = i
		}
	}
	return errors.Join(errs...)
}

// describe names a policy in conflict messages.
func describe(p Policy) string {
	s := "(name '" + p.Name + "', agent_role '" + p.AgentRole + "'"
	if p.PolicyID != "" {
		s += ", policy_id '" + p.PolicyID + "'"
	}
	return s + ")"
}

func joinFieldErrors(fes []*FieldError) error {
	if len(fes) == 0 {
		return nil
	}
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

// validator collects field errors.
type validator struct{ errs []*FieldError }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func idx(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func (v *validator) required(field, value string) {
	if strings.TrimSpace(value) == "" {
		v.add(field, "required")
	}
}

func (v *validator) strings(field string, values []string) {
	for i, s := range values {
		if s == "" {
			v.add(idx(field, i), "must not be empty")
		}
	}
}

func (v *validator) level(field string, l Level) {
	if !l.Valid() {
		if l == "" {
			v.add(field, "required")
			return
		}
		v.add(field, "unknown sensitivity level '%s' (want low, medium, high or critical)", l)
	}
}

func (v *validator) actions(field string, as []Action) {
	for i, a := range as {
		if !a.Valid() {
			v.add(idx(field, i), "unknown action '%s' (want read, write or delete)", a)
		}
	}
}

func (p Policy) fieldErrors() []*FieldError {
	var v validator
	v.required("name", p.Name)
	v.required("agent_role", p.AgentRole)

	for i, id := range p.PermittedAgentIDs {
		f := idx("permitted_agent_ids", i)
		if id == "" {
			v.add(f, "must not be empty")
			continue
		}
		if _, err := parseGlob(id); err != nil {
			v.add(f, "%v in '%s'", err, id)
		}
	}
	v.strings("allowed_sources", p.AllowedSources)
	v.strings("denied_sources", p.DeniedSources)
	v.strings("allowed_tasks", p.AllowedTasks)
	v.strings("denied_tasks", p.DeniedTasks)
	if p.MaxSensitivity != nil {
		v.level("max_sensitivity", *p.MaxSensitivity)
	}
	if p.RequireTaskForSensitivity != nil {
		v.level("require_task_for_sensitivity", *p.RequireTaskForSensitivity)
	}

	tasks := make(map[string]int, len(p.TaskBindings))
	for i, b := range p.TaskBindings {
		f := idx("task_bindings", i)
		if b.Task == "" {
			v.add(f+".task", "required")
		} else if j, ok := tasks[b.Task]; ok {
			v.add(f+".task", "duplicate task '%s' (also task_bindings[%d])", b.Task, j)
		} else {
			tasks[b.Task] = i
		}
		if b.PermittedSources == nil {
			v.add(f+".permitted_sources", "required")
		}
		v.strings(f+".permitted_sources", b.PermittedSources)
		v.actions(f+".actions", b.Actions)
	}

	v.actions("allowed_actions", p.AllowedActions)
	v.actions("denied_actions", p.DeniedActions)

	if p.SessionTTLMinutes != nil && *p.SessionTTLMinutes <= 0 {
		v.add("session_ttl_minutes", "must be positive, got %d", *p.SessionTTLMinutes)
	}

	for i, d := range p.SensitivityDecay {
		f := idx("sensitivity_decay", i)
		switch {
		case d.AfterMinutes < 0:
			v.add(f+".after_minutes", "must not be negative, got %d", d.AfterMinutes)
		case i > 0 && d.AfterMinutes <= p.SensitivityDecay[i-1].AfterMinutes:
			v.add(f+".after_minutes", "must be greater than sensitivity_decay[%d].after_minutes (%d), got %d",
				i-1, p.SensitivityDecay[i-1].AfterMinutes, d.AfterMinutes)
		}
		v.level(f+".max_sensitivity", d.MaxSensitivity)
	}

	for i, r := range p.RequirePrincipalEntitlements {
		f := idx("require_principal_entitlements", i)
		if len(r.Sources) == 0 {
			v.add(f+".sources", "required")
		}
		v.strings(f+".sources", r.Sources)
		if r.Actions != nil && len(r.Actions) == 0 {
			v.add(f+".actions", "must not be empty when present (omit it to cover every action)")
		}
		v.actions(f+".actions", r.Actions)
		if len(r.RequireAny) == 0 && len(r.RequireAll) == 0 {
			v.add(f, "one of require_any or require_all is required")
		}
		v.strings(f+".require_any", r.RequireAny)
		v.strings(f+".require_all", r.RequireAll)
	}
	return v.errs
}

// textErrors reports the first refused character of each string of p: the
// identifiers (name, policy_id, agent_role, permitted_agent_ids, sources,
// tasks, require_any, require_all) by text.Identifier, description and the
// descriptive metadata by text.FreeText.
func (p Policy) textErrors() []*FieldError {
	var v validator
	check := func(rule func(string) error, field, s string) {
		if err := rule(s); err != nil {
			v.errs = append(v.errs, &FieldError{Field: field, Problem: text.Problem(err), Err: err})
		}
	}
	ids := func(field string, values []string) {
		for i, s := range values {
			check(text.Identifier, idx(field, i), s)
		}
	}
	check(text.Identifier, "name", p.Name)
	check(text.Identifier, "policy_id", p.PolicyID)
	check(text.Identifier, "agent_role", p.AgentRole)
	check(text.FreeText, "description", p.Description)
	check(text.FreeText, "industry", p.Industry)
	check(text.FreeText, "organization", p.Organization)
	check(text.FreeText, "division", p.Division)
	check(text.FreeText, "process_group", p.ProcessGroup)
	for i, r := range p.Regulations {
		f := idx("regulations", i)
		check(text.FreeText, f+".id", r.ID)
		check(text.FreeText, f+".name", r.Name)
		for j, rule := range r.ApplicableRules {
			g := idx(f+".applicable_rules", j)
			check(text.FreeText, g+".rule", rule.Rule)
			check(text.FreeText, g+".how_enforced", rule.HowEnforced)
		}
	}
	ids("permitted_agent_ids", p.PermittedAgentIDs)
	ids("allowed_sources", p.AllowedSources)
	ids("denied_sources", p.DeniedSources)
	ids("allowed_tasks", p.AllowedTasks)
	ids("denied_tasks", p.DeniedTasks)
	for i, b := range p.TaskBindings {
		f := idx("task_bindings", i)
		check(text.Identifier, f+".task", b.Task)
		ids(f+".permitted_sources", b.PermittedSources)
	}
	for i, r := range p.RequirePrincipalEntitlements {
		f := idx("require_principal_entitlements", i)
		ids(f+".sources", r.Sources)
		ids(f+".require_any", r.RequireAny)
		ids(f+".require_all", r.RequireAll)
	}
	return v.errs
}
