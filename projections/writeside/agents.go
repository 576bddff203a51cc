package writeside

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
)

// RegisterAgent decides, appends and applies an agent.registered (status
// draft) and returns the agent.
func (l *Ledger) RegisterAgent(ctx context.Context, actor string, cmd agents.RegisterCommand) (agents.Agent, error) {
	var ev agents.AgentRegistered
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		ev, err = agents.Register(tx.State.Agents, cmd, tx.Now, tx.NewID("agent"))
		if err != nil {
			return nil, err
		}
		return []domain.Event{ev}, nil
	})
	if err != nil {
		return agents.Agent{}, err
	}
	return ev.Agent, nil
}

// UpdateAgent applies a partial update. A rebound policy_name takes effect
// on the next evaluation.
func (l *Ledger) UpdateAgent(ctx context.Context, actor, id string, cmd agents.UpdateCommand) (agents.Agent, error) {
	var ev agents.AgentUpdated
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		ev, err = agents.Update(tx.State.Agents, id, cmd, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ev}, nil
	})
	if err != nil {
		return agents.Agent{}, err
	}
	return ev.Agent, nil
}

// ChangeAgentStatus moves agent id to status to (legal transitions only). A
// suspended agent is denied from its next evaluation on.
func (l *Ledger) ChangeAgentStatus(ctx context.Context, actor, id, to string) (agents.Agent, error) {
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		ev, err := agents.ChangeStatus(tx.State.Agents, id, to, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ev}, nil
	})
	if err != nil {
		return agents.Agent{}, err
	}
	return l.Agent(id)
}

// RetireAgent retires agent id (final).
func (l *Ledger) RetireAgent(ctx context.Context, actor, id string) (agents.Agent, error) {
	return l.ChangeAgentStatus(ctx, actor, id, string(agents.StatusRetired))
}

// Agent returns the agent with id, or agents.ErrNotFound.
func (l *Ledger) Agent(id string) (agents.Agent, error) {
	var a agents.Agent
	var ok bool
	l.Read(func(s *domain.State) { a, ok = s.Agents.ByID(id) })
	if !ok {
		return agents.Agent{}, fmt.Errorf("%w: %s", agents.ErrNotFound, id)
	}
	return a, nil
}

// AgentWarnings returns domain.State.AgentWarnings for a in the live state:
// how its policy binding resolves now, when that needs saying.
func (l *Ledger) AgentWarnings(a agents.Agent) []string {
	var out []string
	l.Read(func(s *domain.State) { out = s.AgentWarnings(a) })
	return out
}

// Agents lists the agents matching filter.
func (l *Ledger) Agents(filter agents.Filter) []agents.Agent {
	var out []agents.Agent
	l.Read(func(s *domain.State) { out = s.Agents.List(filter) })
	return out
}
