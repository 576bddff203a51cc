package httpapi

import (
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/httpapi/wire"
)

// TablesAt renders st as it was at instant at (is_active is computed at
// that instant). `custos replay` prints it.
func TablesAt(st *domain.State, at time.Time) wire.Tables {
	t := wire.Tables{AsOf: at.UTC(), Keys: []wire.Key{}, Policies: st.Policies.List(), Agents: []wire.Agent{}}
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
