package domain

import (
	"strconv"
	"strings"

	"github.com/custos-dev/custos/domain/agents"
)

// AgentWarnings returns what an operator should know about how a is
// governed in s, in plain sentences; none when its policy resolves as it
// asked. It reports a policy_id or policy_name binding that names no policy
// (yet), and what applies meanwhile (docs/policy-semantics.md, step 4): the
// other binding when it resolves, else the role's only policy, or a denial
// when the role has none or several. An agent bound to no policy whose role
// has several is reported too.
func (s *State) AgentWarnings(a agents.Agent) []string {
	set := s.Policies.Set()
	_, idOK := set.ByID(a.PolicyID)
	_, nameOK := set.ByName(a.PolicyName)
	var dangling []string
	if a.PolicyID != "" && !idOK {
		dangling = append(dangling, "policy_id '"+a.PolicyID+"'")
	}
	if a.PolicyName != "" && !nameOK {
		dangling = append(dangling, "policy_name '"+a.PolicyName+"'")
	}
	switch {
	case idOK && nameOK, idOK && a.PolicyName == "", nameOK && a.PolicyID == "":
		return nil
	case idOK:
		return []string{dangling[0] + " names no policy; the agent is governed by its policy_id binding"}
	case nameOK:
		return []string{dangling[0] + " names no policy yet; meanwhile the agent is governed by its policy_name binding"}
	}
	n := len(set.RolePolicies(a.AgentRole))
	var fallback string
	switch {
	case n == 1:
		if len(dangling) == 0 {
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
	if len(dangling) == 0 {
		if n == 0 {
			return nil // the plain case of a role without policy; evaluate says so
		}
		return []string{"agent '" + a.AgentID + "' is bound to no policy and " + fallback +
			"; bind it with policy_name or policy_id"}
	}
	if len(dangling) == 2 {
		return []string{strings.Join(dangling, " and ") + " name no policy yet; until one of them does, " + fallback}
	}
	that := "of that name"
	if a.PolicyID != "" {
		that = "with that id"
	}
	return []string{dangling[0] + " names no policy yet; until a policy " + that + " exists, " + fallback}
}
