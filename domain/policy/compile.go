package policy

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Compiled is a validated policy with its lookups precomputed, ready for
// [Compiled.Evaluate]. It is immutable and safe for concurrent use. Build it
// with [Compile]; the zero value is not usable.
type Compiled struct {
	policy  Policy // deep copy of the source; never handed out
	name    string
	id      string
	role    string
	version int

	agentsRestricted bool
	agentExact       map[string]struct{}
	agentGlobs       []glob

	deniedActions      actionSet
	allowedActions     actionSet
	allowedActionsList string // "['read']"

	requireTask      bool
	requireTaskLevel Level
	requireTaskRank  int

	deniedSources  map[string]struct{}
	allowedSources map[string]struct{}

	deniedTasks     map[string]struct{}
	tasksRestricted bool
	allowedTasks    map[string]struct{}

	bindings map[string]*binding

	ceiling     Level
	ceilingRank int
	decay       []decayStep

	entitlements map[string][]*entitlement // by source

	ttl    time.Duration
	hasTTL bool

	allow Decision
}

type binding struct {
	sources           map[string]struct{}
	sourcesList       string
	actionsRestricted bool
	actions           actionSet
	actionsList       string
}

type decayStep struct {
	after   time.Duration
	level   Level
	rank    int
	minutes string // after_minutes as written in the reason
}

type entitlement struct {
	actionsRestricted bool
	actions           actionSet
	requireAny        []string
	requireAnyList    string
	requireAll        []string
	requireAllList    string
}

// Compile validates p (see [Policy.Validate]; all but the character rule,
// which applies to submitted policies only) and precomputes everything
// [Compiled.Evaluate] needs, so that an allowed request costs no allocation.
// It keeps a deep copy of p: later changes to p do not affect the result.
// The error wraps the validation error, so it matches [ErrInvalidPolicy].
//
// Entries of permitted_agent_ids without '*', '?' or '[' are exact ids; the
// others are globs with the semantics of Python's fnmatch.fnmatchcase: '*'
// matches any characters including '/', '?' one character, '[seq]' and
// '[!seq]' one character in or not in seq, case-sensitive, no backslash
// escapes. An unclosed '[' or a reversed range is rejected as invalid.
func Compile(p Policy) (*Compiled, error) {
	// Not Validate: the character rule (textErrors) applies to what clients
	// and files submit, and a policy stored before it must still replay.
	if err := joinFieldErrors(p.fieldErrors()); err != nil {
		return nil, fmt.Errorf("compile policy '%s': %w", p.Name, err)
	}
	p = p.Clone()
	c := &Compiled{
		policy:  p,
		name:    p.Name,
		id:      p.PolicyID,
		role:    p.AgentRole,
		version: p.Version,
	}

	if p.PermittedAgentIDs != nil {
		c.agentsRestricted = true
		c.agentExact = make(map[string]struct{}, len(p.PermittedAgentIDs))
		for _, id := range p.PermittedAgentIDs {
			if !isGlob(id) {
				c.agentExact[id] = struct{}{}
				continue
			}
			g, err := parseGlob(id)
			if err != nil { // unreachable: Validate parsed it
				return nil, fmt.Errorf("compile policy '%s': %w", p.Name, err)
			}
			c.agentGlobs = append(c.agentGlobs, g)
		}
	}

	allowed := p.AllowedActions
	if allowed == nil {
		allowed = DefaultAllowedActions()
	}
	c.allowedActions = actionSetOf(allowed)
	c.allowedActionsList = formatList(allowed)
	c.deniedActions = actionSetOf(p.DeniedActions)

	if p.RequireTaskForSensitivity != nil {
		c.requireTask = true
		c.requireTaskLevel = *p.RequireTaskForSensitivity
		c.requireTaskRank = c.requireTaskLevel.rank()
	}

	c.deniedSources = setOf(p.DeniedSources)
	c.allowedSources = setOf(p.AllowedSources)
	c.deniedTasks = setOf(p.DeniedTasks)
	if p.AllowedTasks != nil {
		c.tasksRestricted = true
		c.allowedTasks = setOf(p.AllowedTasks)
	}

	c.bindings = make(map[string]*binding, len(p.TaskBindings))
	for _, tb := range p.TaskBindings {
		b := &binding{
			sources:     setOf(tb.PermittedSources),
			sourcesList: formatList(tb.PermittedSources),
		}
		if tb.Actions != nil {
			b.actionsRestricted = true
			b.actions = actionSetOf(tb.Actions)
			b.actionsList = formatList(tb.Actions)
		}
		c.bindings[tb.Task] = b
	}

	c.ceiling = DefaultMaxSensitivity
	if p.MaxSensitivity != nil {
		c.ceiling = *p.MaxSensitivity
	}
	c.ceilingRank = c.ceiling.rank()
	for _, d := range p.SensitivityDecay {
		c.decay = append(c.decay, decayStep{
			after:   minutes(d.AfterMinutes),
			level:   d.MaxSensitivity,
			rank:    d.MaxSensitivity.rank(),
			minutes: strconv.Itoa(d.AfterMinutes),
		})
	}

	c.entitlements = make(map[string][]*entitlement)
	for _, r := range p.RequirePrincipalEntitlements {
		e := &entitlement{
			requireAny:     r.RequireAny,
			requireAnyList: formatList(r.RequireAny),
			requireAll:     r.RequireAll,
			requireAllList: formatList(r.RequireAll),
		}
		if r.Actions != nil {
			e.actionsRestricted = true
			e.actions = actionSetOf(r.Actions)
		}
		seen := make(map[string]bool, len(r.Sources))
		for _, s := range r.Sources {
			if !seen[s] { // a source listed twice in one rule counts once
				seen[s] = true
				c.entitlements[s] = append(c.entitlements[s], e)
			}
		}
	}

	if p.SessionTTLMinutes != nil {
		c.hasTTL = true
		c.ttl = minutes(*p.SessionTTLMinutes)
	}

	c.allow = Decision{
		Allowed:       true,
		Reason:        ReasonAccessGranted,
		PolicyName:    c.name,
		PolicyID:      c.id,
		PolicyVersion: c.version,
	}
	return c, nil
}

// minutes converts n minutes to a Duration, saturating instead of
// overflowing.
func minutes(n int) time.Duration {
	if int64(n) > math.MaxInt64/int64(time.Minute) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Minute
}

func setOf(ss []string) map[string]struct{} {
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return m
}

// Policy returns a deep copy of the policy c was compiled from.
func (c *Compiled) Policy() Policy { return c.policy.Clone() }

// Name is the policy's name, returned as policy_name on its decisions.
func (c *Compiled) Name() string { return c.name }

// ID is the policy's policy_id (empty if it had none).
func (c *Compiled) ID() string { return c.id }

// Role is the policy's agent_role: the canonical role used in reasons.
func (c *Compiled) Role() string { return c.role }

// Version is the policy's server-managed version.
func (c *Compiled) Version() int { return c.version }

// SessionTTL returns the lifetime of sessions this policy creates, and false
// if they never expire (no session_ttl_minutes). The session store fixes
// expires_at = created_at + ttl when it creates the session.
func (c *Compiled) SessionTTL() (time.Duration, bool) { return c.ttl, c.hasTTL }
