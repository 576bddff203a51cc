package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ProgressLine counts finished items of a long step (the bulk setup) for a
// person watching. Add is called from many goroutines; Stop once, at the end.
type ProgressLine interface {
	Add(n uint64)
	Stop()
}

// SetupStats are the figures of the bulk setup (Config.SetupKeys and
// Config.SetupPolicies).
type SetupStats struct {
	// Keys and Policies are the keys created and the policies (each with
	// its approved agent) created or found in place.
	Keys, Policies int64
	// KeyErrors and PolicyErrors count the items that failed.
	KeyErrors, PolicyErrors int64
	// KeysElapsed and PoliciesElapsed are how long each step took.
	KeysElapsed, PoliciesElapsed time.Duration
	// FirstErrors are the first distinct error messages, with counts.
	FirstErrors []ErrorCount
}

// KeysPerS returns the keys created per second.
func (s SetupStats) KeysPerS() float64 { return perSecond(s.Keys, s.KeysElapsed) }

// PoliciesPerS returns the policies set up per second.
func (s SetupStats) PoliciesPerS() float64 { return perSecond(s.Policies, s.PoliciesElapsed) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ErrBulkSetupFailed is returned when more items of the bulk setup failed
// than bulkErrorBudget allows.
var ErrBulkSetupFailed = errors.New("loadtest: bulk setup failed")

// bulkErrorBudget is how many items of total may fail before the bulk setup
// stops: 1%, and at least 100.
func bulkErrorBudget(total int) int64 { return max(100, int64(total)/100) }

// bulkKeyExpiresDays is the lifetime of bulk keys: they are left in place
// for later runs and expire by themselves.
const bulkKeyExpiresDays = 7

// bulkRole is the agent role of bulk policy i; bulkAgentID its agent.
func bulkRole(i int) string    { return fmt.Sprintf("loadtest_bulk_%06d", i) }
func bulkAgentID(i int) string { return fmt.Sprintf("loadtest-bulk-%06d", i) }

// bulkPolicy is the policy of bulk role i: like a small real role, so that
// the server's policy index holds realistic entries.
func bulkPolicy(i int) policySpec {
	r := roles[i%len(roles)]
	p := r.policy()
	p.Name = fmt.Sprintf("loadtest-bulk-%06d-policy", i)
	p.AgentRole = bulkRole(i)
	p.Description = "custos loadtest bulk policy; safe to delete"
	return p
}

// bulk runs do(ctx, i) for i in [0, n) on conns goroutines, counts failures
// into *failed and errs, and stops early when they exceed the budget or ctx
// is done. It returns the number of successes.
func bulk(ctx context.Context, n, conns int, prog ProgressLine, errs *errorLog, failed *int64,
	do func(ctx context.Context, i int) error) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	budget := bulkErrorBudget(n)
	var next, ok, bad atomic.Int64
	var wg sync.WaitGroup
	for range min(conns, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := do(ctx, int(i)); err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.add(err.Error())
					if bad.Add(1) > budget {
						cancel(fmt.Errorf("%w: more than %d of %d items failed", ErrBulkSetupFailed, budget, n))
					}
				} else {
					ok.Add(1)
				}
				prog.Add(1)
			}
		})
	}
	wg.Wait()
	*failed += bad.Load()
	return ok.Load(), context.Cause(ctx)
}

// noProgress is the ProgressLine of a Config without Progress.
type noProgress struct{}

func (noProgress) Add(uint64) {}
func (noProgress) Stop()      {}

// bulkSetup creates c.SetupPolicies bulk policies with their agents and
// c.SetupKeys evaluate keys, spread over the load-test roles' agents (which
// setup has created), through the admin API on c.SetupConnections
// connections. It keeps up to perRole keys of each role, in the order of
// roles, for the load run. Bulk keys are not revoked: they are the state
// the following load measures, and expire after bulkKeyExpiresDays.
func (c Config) bulkSetup(ctx context.Context, base, runID string, perRole int) (SetupStats, [][]agentKey, error) {
	var st SetupStats
	if c.SetupKeys == 0 && c.SetupPolicies == 0 {
		return st, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.SetupTimeout)
	defer cancel()
	client := newClient(c.SetupConnections)
	defer client.CloseIdleConnections()
	adm := &admin{client: client, base: base, key: c.APIKey}
	errs := newErrorLog()
	progress := func(label string, total int) ProgressLine {
		if c.Progress == nil {
			return noProgress{}
		}
		return c.Progress(label, uint64(total))
	}
	defer func() { st.FirstErrors = errs.first() }()

	if n := c.SetupPolicies; n > 0 {
		var existing []map[string]any
		if err := adm.call(ctx, http.MethodGet, "/v1/policies", nil, &existing); err != nil {
			return st, nil, fmt.Errorf("list policies: %w", err)
		}
		byRole := make(map[any]map[string]any, len(existing))
		for _, p := range existing {
			byRole[p["agent_role"]] = p
		}
		c.Logger.Info("bulk setup: policies", "count", n, "connections", c.SetupConnections)
		prog := progress("policies", n)
		began := time.Now()
		var err error
		st.Policies, err = bulk(ctx, n, c.SetupConnections, prog, errs, &st.PolicyErrors, func(ctx context.Context, i int) error {
			want := bulkPolicy(i)
			var have []map[string]any
			if p, ok := byRole[want.AgentRole]; ok {
				have = []map[string]any{p}
			}
			if err := adm.ensurePolicy(ctx, want, have); err != nil {
				return fmt.Errorf("policy: %w", err)
			}
			if err := adm.ensureAgent(ctx, agentSpec{id: bulkAgentID(i), role: bulkRole(i), name: "bulk"}); err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			return nil
		})
		prog.Stop()
		st.PoliciesElapsed = time.Since(began)
		if err != nil {
			return st, nil, err
		}
	}

	sample := make([][]agentKey, len(roles))
	if n := c.SetupKeys; n > 0 {
		var mu sync.Mutex
		c.Logger.Info("bulk setup: keys", "count", n, "connections", c.SetupConnections)
		prog := progress("keys", n)
		began := time.Now()
		var err error
		st.Keys, err = bulk(ctx, n, c.SetupConnections, prog, errs, &st.KeyErrors, func(ctx context.Context, i int) error {
			ri := i % len(roles)
			var created struct {
				KeyID string `json:"key_id"`
				Key   string `json:"key"`
			}
			body := map[string]any{
				"name":  fmt.Sprintf("loadtest-bulk-%s-%07d", runID, i),
				"scope": "evaluate", "agent_id": roles[ri].agentID(), "expires_days": bulkKeyExpiresDays,
			}
			if err := adm.call(ctx, http.MethodPost, "/v1/keys", body, &created); err != nil {
				return fmt.Errorf("create key: %w", err)
			}
			mu.Lock()
			if len(sample[ri]) < perRole {
				sample[ri] = append(sample[ri], agentKey{id: created.KeyID, key: created.Key})
			}
			mu.Unlock()
			return nil
		})
		prog.Stop()
		st.KeysElapsed = time.Since(began)
		if err != nil {
			return st, nil, err
		}
	}
	return st, sample, nil
}

// agentSpec names an agent to register: its id, role and a short label.
type agentSpec struct {
	id, role, name string
}
