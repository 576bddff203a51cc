package httpapi

import (
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/policy"
)

// Tables is every key, policy and agent of a state, each in the same JSON
// shape as GET /v1/keys, /v1/policies and /v1/agents answer.
type Tables struct {
	AsOf     time.Time       `json:"as_of"`
	Keys     []keyResponse   `json:"keys"`
	Policies []policy.Policy `json:"policies"`
	Agents   []agentResponse `json:"agents"`
}

// TablesAt renders st as it was at instant at (is_active is computed at
// that instant). `custos replay` prints it.
func TablesAt(st *domain.State, at time.Time) Tables {
	t := Tables{AsOf: at.UTC(), Keys: []keyResponse{}, Policies: st.Policies.List(), Agents: []agentResponse{}}
	for _, k := range st.Keys.List() {
		t.Keys = append(t.Keys, newKeyResponse(k, at))
	}
	if t.Policies == nil {
		t.Policies = []policy.Policy{}
	}
	for _, a := range st.Agents.List(agents.Filter{AllStatuses: true}) {
		t.Agents = append(t.Agents, newAgentResponse(a))
	}
	return t
}
