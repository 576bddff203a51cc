package policy_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

// logRecord is one log entry as the sequencer would store it.
type logRecord struct {
	typ     string
	payload []byte
}

// policyLog plays the sequencer: decide, encode (log), apply to live state.
type policyLog struct {
	t    testing.TB
	live *policy.State
	log  []logRecord
}

func newPolicyLog(t testing.TB) *policyLog { return &policyLog{t: t, live: &policy.State{}} }

// record encodes and applies evs; it fails the test on any error.
func (h *policyLog) record(evs ...policy.Event) {
	h.t.Helper()
	for _, ev := range evs {
		typ, payload, err := encode(ev)
		require.NoError(h.t, err)
		h.log = append(h.log, logRecord{typ, payload})
		require.NoError(h.t, h.live.Apply(ev))
	}
}

// replay folds the log, decoded, into a new State.
func (h *policyLog) replay() *policy.State {
	h.t.Helper()
	s := &policy.State{}
	for _, r := range h.log {
		ev, err := policy.Decode(r.typ, r.payload)
		require.NoError(h.t, err)
		require.NoError(h.t, s.Apply(ev))
	}
	return s
}

// requireSameState checks that two states hold exactly the same policies,
// nil and empty lists included.
func requireSameState(t testing.TB, want, got *policy.State) {
	t.Helper()
	require.Equal(t, want.List(), got.List())
	require.Equal(t, want.Len(), got.Len())
	for _, p := range want.List() {
		require.Equal(t, policyIDs(want.Set().RolePolicies(p.AgentRole)), policyIDs(got.Set().RolePolicies(p.AgentRole)), p.AgentRole)
		c, ok := got.Set().ByName(p.Name)
		require.True(t, ok, p.Name)
		require.Equal(t, p.PolicyID, c.ID())
		require.Equal(t, p, c.Policy())
	}
}

func TestReplayEqualsLive(t *testing.T) {
	t.Parallel()
	h := newPolicyLog(t)
	s := h.live

	full := fullPolicy()
	full.PolicyID = ""
	created, err := policy.Create(s, full, evT0, "pol-1")
	require.NoError(t, err)
	h.record(created)

	empties := mkPolicy("empties", "clerk")
	empties.AllowedSources = []string{}
	empties.DeniedSources = []string{}
	empties.AllowedTasks = []string{}
	empties.PermittedAgentIDs = []string{}
	empties.AllowedActions = []policy.Action{}
	empties.Regulations = []policy.Regulation{}
	empties.RequirePrincipalEntitlements = []policy.EntitlementRule{
		{Sources: []string{"s"}, RequireAny: []string{"group:x"}, RequireAll: []string{}},
	}
	// A time in another zone: the state keeps UTC, so replay matches.
	created2, err := policy.Create(s, empties, evT0.In(time.FixedZone("CET", 3600)), "pol-2")
	require.NoError(t, err)
	h.record(created2)

	upd := s.List()[0]
	require.Equal(t, "empties", upd.Name)
	upd.DeniedSources = nil
	updated, err := policy.Update(s, upd.PolicyID, upd, evT0.Add(time.Hour))
	require.NoError(t, err)
	h.record(updated)

	third, err := policy.Create(s, mkPolicy("third", "auditor"), evT0, "pol-3")
	require.NoError(t, err)
	h.record(third)
	deleted, err := policy.Delete(s, "pol-3", evT0.Add(2*time.Hour))
	require.NoError(t, err)
	h.record(deleted)

	replayed := h.replay()
	requireSameState(t, h.live, replayed)

	got, ok := replayed.ByID("pol-2")
	require.True(t, ok)
	require.NotNil(t, got.AllowedSources)
	require.Empty(t, got.AllowedSources)
	require.Nil(t, got.DeniedSources)
	require.NotNil(t, got.RequirePrincipalEntitlements[0].RequireAll)
	require.Equal(t, 2, got.Version)
	require.Equal(t, time.UTC, got.CreatedAt.Location())
}

func TestApplyRejectsInconsistentEvents(t *testing.T) {
	t.Parallel()
	base := func() *policy.State {
		s := &policy.State{}
		require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy("a", "ra"), "pol-a", 2)}))
		require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy("b", "rb"), "pol-b", 1)}))
		return s
	}
	noID := stamped(mkPolicy("c", "rc"), "", 1)
	noTimes := mkPolicy("c", "rc")
	noTimes.PolicyID, noTimes.Version = "pol-c", 1
	invalid := stamped(policy.Policy{Name: "c", AgentRole: "rc", AllowedActions: []policy.Action{"exec"}}, "pol-c", 1)
	for _, tc := range []struct {
		name string
		ev   policy.Event
	}{
		{name: "created without policy_id", ev: policy.PolicyCreated{Policy: noID}},
		{name: "created without times", ev: policy.PolicyCreated{Policy: noTimes}},
		{name: "created with version 0", ev: policy.PolicyCreated{Policy: stamped(mkPolicy("c", "rc"), "pol-c", 0)}},
		{name: "created with existing id", ev: policy.PolicyCreated{Policy: stamped(mkPolicy("c", "rc"), "pol-a", 1)}},
		{name: "created with taken name", ev: policy.PolicyCreated{Policy: stamped(mkPolicy("a", "rc"), "pol-c", 1)}},
		{name: "created invalid policy", ev: policy.PolicyCreated{Policy: invalid}},
		{name: "updated unknown id", ev: policy.PolicyUpdated{Policy: stamped(mkPolicy("c", "rc"), "pol-c", 2)}},
		{name: "updated same version", ev: policy.PolicyUpdated{Policy: stamped(mkPolicy("a", "ra"), "pol-a", 2)}},
		{name: "updated to taken name", ev: policy.PolicyUpdated{Policy: stamped(mkPolicy("b", "ra"), "pol-a", 3)}},
		{name: "deleted unknown id", ev: policy.PolicyDeleted{PolicyID: "pol-c", Name: "c", AgentRole: "rc", Version: 1, DeletedAt: evT0}},
		{name: "deleted without time", ev: policy.PolicyDeleted{PolicyID: "pol-a", Name: "a", AgentRole: "ra", Version: 2}},
		{name: "deleted wrong version", ev: policy.PolicyDeleted{PolicyID: "pol-a", Name: "a", AgentRole: "ra", Version: 1, DeletedAt: evT0}},
		{name: "deleted wrong role", ev: policy.PolicyDeleted{PolicyID: "pol-a", Name: "a", AgentRole: "rb", Version: 2, DeletedAt: evT0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := base()
			before := s.Set()
			err := s.Apply(tc.ev)
			require.ErrorIs(t, err, policy.ErrInconsistent)
			require.NotErrorIs(t, err, policy.ErrConflict, "an Apply error is never a 409")
			require.NotErrorIs(t, err, policy.ErrInvalidPolicy, "an Apply error is never a 422")
			require.Same(t, before, s.Set(), "state unchanged")
		})
	}
}

func TestApplyUpdateMayChangeOwnRoleAndName(t *testing.T) {
	t.Parallel()
	var s policy.State
	require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy("a", "ra"), "pol-a", 1)}))
	require.NoError(t, s.Apply(policy.PolicyUpdated{Policy: stamped(mkPolicy("a2", "ra2"), "pol-a", 2)}))
	_, ok := s.Set().ByRole("ra")
	require.False(t, ok)
	c, ok := s.Set().ByRole("ra2")
	require.True(t, ok)
	require.Equal(t, "a2", c.Name())
	require.Equal(t, 2, c.Version())
}

func TestStateSnapshotsAndClone(t *testing.T) {
	t.Parallel()
	var s policy.State
	require.Nil(t, s.Set())
	require.Empty(t, s.List())
	require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy("b", "rb"), "pol-b", 1)}))
	snap := s.Set()
	clone := s.Clone()

	require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy("a", "ra"), "pol-a", 1)}))
	require.Equal(t, 1, snap.Len(), "a snapshot never changes")
	require.Equal(t, 1, clone.Len(), "a clone is independent")
	require.Equal(t, 2, s.Len())

	require.NoError(t, clone.Apply(policy.PolicyDeleted{PolicyID: "pol-b", Name: "b", AgentRole: "rb", Version: 1, DeletedAt: evT0}))
	require.Zero(t, clone.Len())
	require.Equal(t, 2, s.Len())

	names := []string{}
	for _, p := range s.List() {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"a", "b"}, names, "List sorts by name")

	p, ok := s.ByID("pol-a")
	require.True(t, ok)
	p.AllowedSources[0] = "mutated"
	again, _ := s.ByID("pol-a")
	require.Equal(t, "src-ra", again.AllowedSources[0], "ByID returns a copy")
	_, ok = s.ByID("missing")
	require.False(t, ok)
}

func TestApplyAllIsAllOrNothing(t *testing.T) {
	t.Parallel()
	var s policy.State
	good := policy.PolicyCreated{Policy: stamped(mkPolicy("a", "ra"), "pol-a", 1)}
	clash := policy.PolicyCreated{Policy: stamped(mkPolicy("a", "rb"), "pol-b", 1)}
	err := s.ApplyAll(good, clash)
	require.ErrorIs(t, err, policy.ErrInconsistent)
	require.Zero(t, s.Len())
	require.NoError(t, s.ApplyAll(good, policy.PolicyCreated{Policy: stamped(mkPolicy("b", "rb"), "pol-b", 1)}))
	require.Equal(t, 2, s.Len())
}

// TestConcurrentReaders runs readers against a writer; -race checks that
// readers need no lock.
func TestConcurrentReaders(t *testing.T) {
	t.Parallel()
	var s policy.State
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				set := s.Set()
				for _, c := range set.All() {
					d := c.Evaluate(policy.Request{AgentRole: c.Role(), SourceID: "src-" + c.Role(), Sensitivity: policy.LevelLow}, 0)
					if !d.Allowed {
						panic(fmt.Sprintf("unexpected denial %+v", d))
					}
				}
				_ = s.List()
			}
		})
	}
	for i := range 200 {
		id := fmt.Sprintf("pol-%d", i)
		require.NoError(t, s.Apply(policy.PolicyCreated{Policy: stamped(mkPolicy(id, "r"+id), id, 1)}))
		if i%2 == 1 {
			require.NoError(t, s.Apply(policy.PolicyDeleted{PolicyID: id, Name: id, AgentRole: "r" + id, Version: 1, DeletedAt: evT0}))
		}
	}
	close(stop)
	wg.Wait()
	require.Equal(t, 100, s.Len())
}

func policyIDs(cs []*policy.Compiled) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID()
	}
	return ids
}
