package policy

import "time"

// Request is one evaluation request (POST /v1/context/evaluate). UserID and
// Query are recorded only. Sensitivity and Action are not checked on
// decoding: callers should reject invalid values (see [Level.Valid] and
// [Action.Valid]) before evaluating; [Compiled.Evaluate] fails closed on them.
type Request struct {
	// AgentRole is the claimed role.
	AgentRole string `json:"agent_role"`
	// AgentID identifies the calling agent.
	AgentID string `json:"agent_id"`
	// UserID is recorded only.
	UserID string `json:"user_id"`
	// SourceID is the requested source; matched exactly.
	SourceID string `json:"source_id"`
	// Sensitivity is the sensitivity of the requested data.
	Sensitivity Level `json:"sensitivity_level"`
	// SessionID names the session; the first request with it creates it.
	SessionID string `json:"session_id"`
	// TaskType is optional.
	TaskType string `json:"task_type,omitempty"`
	// Action defaults to [DefaultAction] (read) when empty.
	Action Action `json:"action,omitempty"`
	// Query is recorded only.
	Query string `json:"query,omitempty"`
	// PrincipalClaims are the end user's "type:value" claims, e.g.
	// "group:licensed-advisors"; optional.
	PrincipalClaims []string `json:"principal_claims,omitempty"`
}

// Decision is the outcome of an evaluation.
type Decision struct {
	// Allowed is true only for ALLOW.
	Allowed bool `json:"allowed"`
	// Reason is the spec's reason text, byte for byte.
	Reason string `json:"reason"`
	// PolicyName is the deciding policy's name, or a fixed name such as
	// "default_deny" for denials made before a policy applies.
	PolicyName string `json:"policy_name"`
	// PolicyID is the deciding policy's policy_id; empty when no policy
	// decided.
	PolicyID string `json:"policy_id,omitempty"`
	// PolicyVersion is the deciding policy's version; 0 when no policy
	// decided.
	PolicyVersion int `json:"policy_version,omitempty"`
	// DenialType is empty for ALLOW, otherwise one of [DenialIdentity],
	// [DenialRole], [DenialSession] or [DenialPolicy].
	DenialType string `json:"denial_type,omitempty"`
}

// Evaluate decides req under c: steps 5 to 14 of the spec, in order, the
// first failing step denying. The caller has done steps 1 to 4 (identity,
// role lock, session, policy lookup) and picked c for the canonical role;
// Evaluate does not look at req.AgentRole, and {role} in reasons is always
// c's agent_role.
//
// sessionAge is the age of the request's session (now minus created_at),
// used by sensitivity_decay: a step applies once sessionAge >= after_minutes,
// the latest step reached wins, and the effective ceiling is the lower of
// max_sensitivity and that step's level. A negative age counts as zero. Pass
// 0 when the request has no session.
//
// An empty req.Action means read. An unknown action is in no action list and
// an unknown sensitivity level ranks above critical, so both fail closed.
//
// Evaluate is safe for concurrent use and does not allocate when it allows.
func (c *Compiled) Evaluate(req Request, sessionAge time.Duration) Decision {
	action := req.Action
	if action == "" {
		action = DefaultAction
	}

	// 5. permitted_agent_ids
	if c.agentsRestricted && !c.agentPermitted(req.AgentID) {
		return c.deny("Agent '" + req.AgentID + "' is not in permitted_agent_ids for role '" + c.role + "'")
	}

	// 6. actions: denied_actions, then allowed_actions
	if c.deniedActions.has(action) {
		return c.deny("Action '" + string(action) + "' is explicitly denied for role '" + c.role + "'")
	}
	if !c.allowedActions.has(action) {
		return c.deny("Action '" + string(action) + "' is not in the allowed action list for role '" + c.role +
			"' (allowed: " + c.allowedActionsList + ")")
	}

	// 7. require_task_for_sensitivity
	rank := req.Sensitivity.rank()
	if c.requireTask && req.TaskType == "" && rank >= c.requireTaskRank {
		return c.deny("A task_type is required for sensitivity '" + string(req.Sensitivity) + "' for role '" +
			c.role + "' (threshold: '" + string(c.requireTaskLevel) + "')")
	}

	// 8. denied_sources
	if _, ok := c.deniedSources[req.SourceID]; ok {
		return c.deny("Source '" + req.SourceID + "' is explicitly denied for role '" + c.role + "'")
	}

	// 9. tasks: denied_tasks, then allowed_tasks
	var b *binding
	if req.TaskType != "" {
		if _, ok := c.deniedTasks[req.TaskType]; ok {
			return c.deny("Task '" + req.TaskType + "' is explicitly denied for role '" + c.role + "'")
		}
		if c.tasksRestricted {
			if _, ok := c.allowedTasks[req.TaskType]; !ok {
				return c.deny("Task '" + req.TaskType + "' is not in the allowed task list for role '" + c.role + "'")
			}
		}
		b = c.bindings[req.TaskType]
	}

	// 10. task_bindings: the source, then the binding's actions
	if b != nil {
		if _, ok := b.sources[req.SourceID]; !ok {
			return c.deny("Task '" + req.TaskType + "' is not permitted to access source '" + req.SourceID +
				"' — permitted: " + b.sourcesList)
		}
		if b.actionsRestricted && !b.actions.has(action) {
			return c.deny("Task '" + req.TaskType + "' is not permitted to perform action '" + string(action) +
				"' — permitted: " + b.actionsList)
		}
	}

	// 11. allowed_sources
	if _, ok := c.allowedSources[req.SourceID]; !ok {
		return c.deny("Source '" + req.SourceID + "' is not in the allowed list for role '" + c.role + "'")
	}

	// 12. ceiling, with decay by session age. Above max_sensitivity the plain
	// reason applies whatever the decay; the effective-ceiling reason is
	// used only when the decayed ceiling alone denies.
	if rank > c.ceilingRank {
		return c.deny("Sensitivity '" + string(req.Sensitivity) + "' exceeds ceiling '" + string(c.ceiling) +
			"' for role '" + c.role + "'")
	}
	if d := c.decayAt(sessionAge); d != nil && rank > d.rank {
		return c.deny("Sensitivity '" + string(req.Sensitivity) + "' exceeds effective ceiling '" + string(d.level) +
			"' for role '" + c.role + "' (sensitivity_decay after " + d.minutes + " minutes)")
	}

	// 13. require_principal_entitlements
	for _, e := range c.entitlements[req.SourceID] {
		if e.actionsRestricted && !e.actions.has(action) {
			continue
		}
		if len(e.requireAny) > 0 && !holdsAny(req.PrincipalClaims, e.requireAny) {
			return c.deny("Principal lacks required entitlements for source '" + req.SourceID +
				"' — require_any: " + e.requireAnyList)
		}
		if len(e.requireAll) > 0 && !holdsAll(req.PrincipalClaims, e.requireAll) {
			return c.deny("Principal lacks required entitlements for source '" + req.SourceID +
				"' — require_all: " + e.requireAllList)
		}
	}

	// 14. ALLOW
	return c.allow
}

func (c *Compiled) deny(reason string) Decision {
	return Decision{
		Reason:        reason,
		PolicyName:    c.name,
		PolicyID:      c.id,
		PolicyVersion: c.version,
		DenialType:    DenialPolicy,
	}
}

// agentPermitted reports whether id matches permitted_agent_ids; an empty id
// never does.
func (c *Compiled) agentPermitted(id string) bool {
	if id == "" {
		return false
	}
	if _, ok := c.agentExact[id]; ok {
		return true
	}
	for _, g := range c.agentGlobs {
		if g.match(id) {
			return true
		}
	}
	return false
}

// decayAt returns the latest decay step reached at age, or nil.
func (c *Compiled) decayAt(age time.Duration) *decayStep {
	if age < 0 {
		age = 0
	}
	for i := len(c.decay) - 1; i >= 0; i-- {
		if age >= c.decay[i].after {
			return &c.decay[i]
		}
	}
	return nil
}

func holdsAny(claims, want []string) bool {
	for _, w := range want {
		if contains(claims, w) {
			return true
		}
	}
	return false
}

func holdsAll(claims, want []string) bool {
	for _, w := range want {
		if !contains(claims, w) {
			return false
		}
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
