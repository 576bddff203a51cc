package domain

import (
	"strconv"

	"github.com/custos-dev/custos/domain/agents"
)

// AgentWarnings returns what an operator should know about how a is
// governed in s, in plain sentences; none when its policy resolves as it
// asked. It reports a policy_name binding that names no policy (yet), and
// the fall-back that applies meanwhile (docs/policy-semantics.md, step 4):
// the role's only policy, or a denial when the role has none or several.
// An agent bound to no policy whose role has several is reported too.
func (s *State) AgentWarnings(a agents.Agent) []string {
	set := s.Policies.Set()
	if a.PolicyName != "" {
		if _, ok := set.ByName(a.PolicyName); ok {
			return nil
		}
	}
	n := len(set.RolePolicies(a.AgentRole))
	var fallback string
	switch {
	case n == 1:
		if a.PolicyName == "" {
			return nil
		}
		only, _ := set.ByRole(a.AgentRole)
		fallback = "it is governed by the only policy of role '" + a.AgentRole + "', '" + only.Name() + "'"
	case n == 0:
		fallback = "role '" + a.AgentRole + "' has no policy, so its requests are denied (default_deny)"
	default:
		fallback = "role '" + a.AgentRole + "' has " + strconv.Itoa(n) +
			" policies, so its requests are denied (policy_ambiguous)"
	}
	if a.PolicyName == "" {
		if n == 0 {
			return nil // the plain case of a role without policy; evaluate says so
		}
		return []string{"agent '" + a.AgentID + "' is bound to no policy and " + fallback +
			"; bind it with policy_name"}
	}
	return []string{"policy_name '" + a.PolicyName + "' names no policy yet; until a policy of that name exists, " +
		fallback}
}
