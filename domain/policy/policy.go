package policy

import (
	"slices"
	"time"
)

// Policy is one entry of a policy file's policies list, plus the descriptive
// metadata of the file it came from and the fields the server manages. The
// struct tags carry the spec's snake_case names. A Policy is a plain value:
// build it, call [Policy.Validate] or [Compile], and do not share it between
// goroutines while modifying it.
//
// Nil versus empty: for the fields documented so, a nil slice (or nil
// pointer) means the field is absent and a non-nil empty slice means it is
// present with no entries; the two mean different things.
type Policy struct {
	// Name is required. It is returned as policy_name on every decision this
	// policy makes.
	Name string `json:"name" yaml:"name"`
	// PolicyID is the stable id. Policy files may omit it; the service
	// generates one before storing the policy. Empty ids are not indexed by
	// [Set.ByID] and are not checked for duplicates.
	PolicyID string `json:"policy_id,omitempty" yaml:"policy_id,omitempty"`
	// AgentRole is required: the role this policy governs. A role may have
	// several policies; an agent of a role with several is governed by the
	// one it is bound to (see [Set.Resolve]).
	AgentRole string `json:"agent_role" yaml:"agent_role"`
	// Description is documentation only.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`

	// Industry, Organization, Division, ProcessGroup and Regulations are
	// descriptive metadata (top level in a policy file); they never affect a
	// decision.
	Industry     string       `json:"industry,omitempty" yaml:"industry,omitempty"`
	Organization string       `json:"organization,omitempty" yaml:"organization,omitempty"`
	Division     string       `json:"division,omitempty" yaml:"division,omitempty"`
	ProcessGroup string       `json:"process_group,omitempty" yaml:"process_group,omitempty"`
	Regulations  []Regulation `json:"regulations,omitzero" yaml:"regulations,omitempty"`

	// PermittedAgentIDs restricts which agent ids may use this policy: exact
	// ids or shell globs (see [Compile] for the glob syntax). Nil: no
	// restriction. Non-nil (even empty): the request's agent_id must match an
	// entry; a request without agent_id is denied.
	PermittedAgentIDs []string `json:"permitted_agent_ids,omitzero" yaml:"permitted_agent_ids"`
	// AllowedSources lists the sources this role may touch. Nil and empty
	// both mean nothing is allowed.
	AllowedSources []string `json:"allowed_sources,omitzero" yaml:"allowed_sources,omitempty"`
	// DeniedSources are denied explicitly, before any task or allow check.
	DeniedSources []string `json:"denied_sources,omitzero" yaml:"denied_sources,omitempty"`
	// AllowedTasks restricts task_type when a request gives one. Nil: tasks
	// are unrestricted. Non-nil (even empty): a given task_type must be
	// listed.
	AllowedTasks []string `json:"allowed_tasks,omitzero" yaml:"allowed_tasks"`
	// DeniedTasks are task types denied explicitly; checked before
	// AllowedTasks.
	DeniedTasks []string `json:"denied_tasks,omitzero" yaml:"denied_tasks,omitempty"`
	// MaxSensitivity is the ceiling: a request at this level is allowed,
	// above it denied. Nil: [DefaultMaxSensitivity] (high).
	MaxSensitivity *Level `json:"max_sensitivity,omitempty" yaml:"max_sensitivity,omitempty"`
	// RequireTaskForSensitivity, when set, denies a request without
	// task_type whose sensitivity is at or above this level. Nil: no such
	// requirement.
	RequireTaskForSensitivity *Level `json:"require_task_for_sensitivity,omitempty" yaml:"require_task_for_sensitivity,omitempty"`
	// TaskBindings limits, per task, the sources and actions a request with
	// that task_type may use. A binding never grants a source missing from
	// AllowedSources. Nil or empty: no purpose limits.
	TaskBindings []TaskBinding `json:"task_bindings,omitzero" yaml:"task_bindings,omitempty"`
	// AllowedActions lists the actions permitted at all. Nil: [read] (see
	// [DefaultAllowedActions]). Non-nil (even empty): exactly these.
	AllowedActions []Action `json:"allowed_actions,omitzero" yaml:"allowed_actions"`
	// DeniedActions are denied explicitly and beat AllowedActions.
	DeniedActions []Action `json:"denied_actions,omitzero" yaml:"denied_actions,omitempty"`
	// SessionTTLMinutes fixes a session's lifetime when the session is
	// created (expires_at = created_at + ttl; activity does not extend it).
	// Nil: sessions never expire. When set it must be positive.
	SessionTTLMinutes *int `json:"session_ttl_minutes,omitempty" yaml:"session_ttl_minutes,omitempty"`
	// SensitivityDecay lowers the ceiling as the session ages; steps must be
	// strictly increasing in AfterMinutes. Nil or empty: no decay.
	SensitivityDecay []DecayStep `json:"sensitivity_decay,omitzero" yaml:"sensitivity_decay,omitempty"`
	// RequirePrincipalEntitlements are claim requirements on the end-user
	// principal per source (and optionally action). Nil or empty: none.
	RequirePrincipalEntitlements []EntitlementRule `json:"require_principal_entitlements,omitzero" yaml:"require_principal_entitlements,omitempty"`

	// Version is managed by the server (1 on creation, +1 per update); policy
	// files cannot set it.
	Version int `json:"version,omitempty" yaml:"-"`
	// CreatedAt is managed by the server; policy files cannot set it.
	CreatedAt time.Time `json:"created_at,omitzero" yaml:"-"`
	// UpdatedAt is managed by the server; policy files cannot set it.
	UpdatedAt time.Time `json:"updated_at,omitzero" yaml:"-"`
}

// DefaultAllowedActions returns the allowed actions of a policy without
// allowed_actions: [read]. It returns a new slice on every call.
func DefaultAllowedActions() []Action { return []Action{ActionRead} }

// TaskBinding limits what a request with a given task_type may touch.
type TaskBinding struct {
	// Task is the task_type this binding applies to; required, unique within
	// a policy.
	Task string `json:"task" yaml:"task"`
	// PermittedSources are the only sources the task may touch (and each
	// must also be in the policy's AllowedSources). Required; an empty list
	// means the task may touch no source.
	PermittedSources []string `json:"permitted_sources" yaml:"permitted_sources"`
	// Actions narrows the actions under this task. Nil: no narrowing.
	// Non-nil (even empty): the request's action must be listed.
	Actions []Action `json:"actions,omitzero" yaml:"actions"`
}

// DecayStep lowers the ceiling once a session is at least AfterMinutes old.
type DecayStep struct {
	// AfterMinutes is the session age, in minutes, from which the step
	// applies; not negative.
	AfterMinutes int `json:"after_minutes" yaml:"after_minutes"`
	// MaxSensitivity is the ceiling from then on (never above the policy's
	// own ceiling: the effective ceiling is the lower of the two). Required.
	MaxSensitivity Level `json:"max_sensitivity" yaml:"max_sensitivity"`
}

// EntitlementRule requires the principal's claims ("type:value" strings) for
// requests to its sources.
type EntitlementRule struct {
	// Sources the rule applies to; required, not empty.
	Sources []string `json:"sources" yaml:"sources"`
	// Actions restricts the rule to these actions. Nil: every action. When
	// present it must not be empty.
	Actions []Action `json:"actions,omitzero" yaml:"actions"`
	// RequireAny: the principal must hold at least one of these claims.
	RequireAny []string `json:"require_any,omitzero" yaml:"require_any,omitempty"`
	// RequireAll: the principal must hold every one of these claims.
	// At least one of RequireAny and RequireAll must be non-empty; when both
	// are, both must hold.
	RequireAll []string `json:"require_all,omitzero" yaml:"require_all,omitempty"`
}

// Regulation is descriptive metadata: a regulation and how the policy
// enforces its rules.
type Regulation struct {
	// ID identifies the regulation, e.g. "finra-2111".
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Name is the regulation's human-readable name.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// ApplicableRules are the rules of the regulation the policy addresses.
	ApplicableRules []RegulationRule `json:"applicable_rules,omitzero" yaml:"applicable_rules,omitempty"`
}

// RegulationRule is one rule of a [Regulation] and how it is enforced.
type RegulationRule struct {
	// Rule states the rule.
	Rule string `json:"rule,omitempty" yaml:"rule,omitempty"`
	// HowEnforced says which policy fields enforce it.
	HowEnforced string `json:"how_enforced,omitempty" yaml:"how_enforced,omitempty"`
}

// Clone returns a deep copy of p: no slice or pointer of the copy is shared
// with p. Nil slices and pointers stay nil and empty slices stay empty.
func (p Policy) Clone() Policy {
	q := p
	q.Regulations = cloneSlice(p.Regulations)
	for i := range q.Regulations {
		q.Regulations[i].ApplicableRules = cloneSlice(q.Regulations[i].ApplicableRules)
	}
	q.PermittedAgentIDs = cloneSlice(p.PermittedAgentIDs)
	q.AllowedSources = cloneSlice(p.AllowedSources)
	q.DeniedSources = cloneSlice(p.DeniedSources)
	q.AllowedTasks = cloneSlice(p.AllowedTasks)
	q.DeniedTasks = cloneSlice(p.DeniedTasks)
	q.MaxSensitivity = clonePtr(p.MaxSensitivity)
	q.RequireTaskForSensitivity = clonePtr(p.RequireTaskForSensitivity)
	q.TaskBindings = cloneSlice(p.TaskBindings)
	for i := range q.TaskBindings {
		q.TaskBindings[i].PermittedSources = cloneSlice(q.TaskBindings[i].PermittedSources)
		q.TaskBindings[i].Actions = cloneSlice(q.TaskBindings[i].Actions)
	}
	q.AllowedActions = cloneSlice(p.AllowedActions)
	q.DeniedActions = cloneSlice(p.DeniedActions)
	q.SessionTTLMinutes = clonePtr(p.SessionTTLMinutes)
	q.SensitivityDecay = cloneSlice(p.SensitivityDecay)
	q.RequirePrincipalEntitlements = cloneSlice(p.RequirePrincipalEntitlements)
	for i := range q.RequirePrincipalEntitlements {
		r := &q.RequirePrincipalEntitlements[i]
		r.Sources = cloneSlice(r.Sources)
		r.Actions = cloneSlice(r.Actions)
		r.RequireAny = cloneSlice(r.RequireAny)
		r.RequireAll = cloneSlice(r.RequireAll)
	}
	return q
}

// cloneSlice copies s, keeping nil nil and empty empty (slices.Clone does).
func cloneSlice[T any](s []T) []T { return slices.Clone(s) }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
