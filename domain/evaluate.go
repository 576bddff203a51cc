package domain

import (
	"time"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
)

// EvaluateInput is one evaluation request and who asked it.
type EvaluateInput struct {
	// Request is the request as received, action defaulted.
	Request policy.Request
	// KeyID is the calling API key.
	KeyID string
	// KeyAgentID is the agent the calling key is bound to, or "".
	KeyAgentID string
	// Now is the time of the decision.
	Now time.Time
}

// Evaluate decides a request in the order of docs/policy-semantics.md: key
// binding, identity, role lock, session, policy (and its steps 5 to 14). It
// reads s only and returns the decision.made to record, which carries
// SessionStarted when this request starts its session (even when the rest of
// the request is denied). The caller appends it and folds it in with Apply,
// under the same lock, so two requests racing for a new session see each
// other in log order.
func (s *State) Evaluate(in EvaluateInput) decision.Made {
	req := in.Request
	if req.Action == "" {
		req.Action = policy.DefaultAction
	}
	made := func(d policy.Decision, role string) decision.Made {
		return decision.NewMade(req, d, role, in.KeyID, in.Now)
	}

	// A key bound to an agent speaks for that agent only.
	if in.KeyAgentID != "" && in.KeyAgentID != req.AgentID {
		return made(policy.DenyKeyAgentMismatch(in.KeyAgentID, req.AgentID), "")
	}
	// 1. Identity.
	agent, ok := s.Agents.ByID(req.AgentID)
	if !ok {
		return made(policy.DenyAgentNotRegistered(req.AgentID), "")
	}
	if !agent.IsApproved() {
		return made(policy.DenyAgentNotApproved(req.AgentID, string(agent.Status)), "")
	}
	// 2. Role lock: a permitted alias is evaluated as the agent's own role.
	if !agent.MayClaim(req.AgentRole) {
		return made(policy.DenyRoleNotPermitted(req.AgentID, req.AgentRole, agent.ClaimableRoles()), "")
	}
	role := agent.AgentRole

	// The policy that governs this agent: its bound policy when the binding
	// resolves, else its role's only policy, else none (policy.Set.Resolve).
	resolved := s.Policies.Set().Resolve(role, agent.PolicyID, agent.PolicyName)
	compiled := resolved.Policy
	ok = compiled != nil

	// 3. Session: the first request starts it, owned by this role, with the
	// owner policy's TTL fixed now.
	var started *decision.SessionStarted
	var sessionAge time.Duration
	if sess, exists := s.Sessions.Get(req.SessionID); exists {
		if sess.OwnerRole != role {
			return made(policy.DenySessionOwned(req.SessionID, sess.OwnerRole, role), role)
		}
		if sess.Expired(in.Now) {
			return made(policy.DenySessionExpired(req.SessionID), role)
		}
		sessionAge = sess.Age(in.Now)
	} else {
		started = &decision.SessionStarted{
			SessionID: req.SessionID, OwnerRole: role, OwnerAgentID: req.AgentID, StartedAt: in.Now.UTC(),
		}
		if ok {
			if ttl, has := compiled.SessionTTL(); has {
				end := in.Now.Add(ttl).UTC()
				started.ExpiresAt = &end
			}
		}
	}

	// 4. Policy, then its own steps 5 to 14.
	var d policy.Decision
	switch {
	case ok:
		evaluated := req
		evaluated.AgentRole = role
		d = compiled.Evaluate(evaluated, sessionAge)
	case resolved.RolePolicies > 1:
		d = policy.DenyPolicyAmbiguous(role, resolved.RolePolicies, req.AgentID)
	default:
		d = policy.DenyNoPolicy(role)
	}
	m := made(d, role)
	m.PolicyResolution = resolved.Rule
	m.SessionStarted = started
	return m
}
