package policy_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// idSeq returns a newID func minting "gen-1", "gen-2", ...
func idSeq() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("gen-%d", n)
	}
}

// syncRecord runs Sync on h.live and records the events.
func syncRecord(t testing.TB, h *policyLog, desired []policy.Policy, now time.Time, newID func() string) []policy.Event {
	t.Helper()
	evs, err := policy.Sync(h.live, desired, now, newID)
	require.NoError(t, err)
	h.record(evs...)
	return evs
}

// summary describes events as "type name" strings.
func summary(evs []policy.Event) []string {
	var out []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case policy.PolicyCreated:
			out = append(out, fmt.Sprintf("created %s %s v%d", e.Policy.Name, e.Policy.AgentRole, e.Policy.Version))
		case policy.PolicyUpdated:
			out = append(out, fmt.Sprintf("updated %s %s v%d", e.Policy.Name, e.Policy.AgentRole, e.Policy.Version))
		case policy.PolicyDeleted:
			out = append(out, fmt.Sprintf("deleted %s %s v%d", e.Name, e.AgentRole, e.Version))
		}
	}
	return out
}

// baseline is the policy folder every sync case starts from.
func baseline() []policy.Policy {
	return []policy.Policy{mkPolicy("a", "ra"), mkPolicy("b", "rb"), mkPolicy("c", "rc")}
}

func TestSync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		desired func(ids map[string]string) []policy.Policy // ids: name -> policy_id after baseline
		want    []string
		check   func(t *testing.T, s *policy.State, evs []policy.Event)
	}{
		{
			name:    "identical set",
			desired: func(map[string]string) []policy.Policy { return baseline() },
		},
		{
			name: "identical set in another order",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				slices.Reverse(b)
				return b
			},
		},
		{
			name: "one changed field",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				b[1].SessionTTLMinutes = ptr(30)
				return b
			},
			want: []string{"updated b rb v2"},
			check: func(t *testing.T, s *policy.State, evs []policy.Event) {
				p := evs[0].(policy.PolicyUpdated).Policy
				require.Equal(t, ptr(30), p.SessionTTLMinutes)
				require.Equal(t, evT0, p.CreatedAt)
				require.Equal(t, evT0.Add(time.Hour), p.UpdatedAt)
			},
		},
		{
			name: "absent to empty list is a change",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				b[0].PermittedAgentIDs = []string{}
				return b
			},
			want: []string{"updated a ra v2"},
		},
		{
			name: "removed",
			desired: func(map[string]string) []policy.Policy {
				return baseline()[:2]
			},
			want: []string{"deleted c rc v1"},
		},
		{
			name: "added",
			desired: func(map[string]string) []policy.Policy {
				return append(baseline(), mkPolicy("d", "rd"))
			},
			want: []string{"created d rd v1"},
			check: func(t *testing.T, s *policy.State, evs []policy.Event) {
				p := evs[0].(policy.PolicyCreated).Policy
				require.Equal(t, "gen-1", p.PolicyID)
				require.Equal(t, evT0.Add(time.Hour), p.CreatedAt)
			},
		},
		{
			name: "added with its own id",
			desired: func(map[string]string) []policy.Policy {
				return append(baseline(), withIDOf(mkPolicy("d", "rd"), "pol-d"))
			},
			want: []string{"created d rd v1"},
			check: func(t *testing.T, s *policy.State, _ []policy.Event) {
				_, ok := s.ByID("pol-d")
				require.True(t, ok)
			},
		},
		{
			name: "role swap by name",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				b[0].AgentRole, b[1].AgentRole = "rb", "ra"
				return b
			},
			want: []string{"updated a rb v2", "updated b ra v2"},
			check: func(t *testing.T, s *policy.State, _ []policy.Event) {
				a, _ := s.Set().ByRole("rb")
				b, _ := s.Set().ByRole("ra")
				require.Equal(t, "a", a.Name())
				require.Equal(t, "b", b.Name())
				pa := a.Policy()
				require.Equal(t, evT0, pa.CreatedAt, "an updated policy keeps created_at")
				require.Equal(t, 2, pa.Version)
			},
		},
		{
			name: "a second policy for a role",
			desired: func(map[string]string) []policy.Policy {
				return append(baseline(), mkPolicy("a2", "ra"))
			},
			want: []string{"created a2 ra v1"},
			check: func(t *testing.T, s *policy.State, _ []policy.Event) {
				require.Len(t, s.Set().RolePolicies("ra"), 2)
			},
		},
		{
			name: "name swap by id",
			desired: func(ids map[string]string) []policy.Policy {
				b := baseline()
				b[0].PolicyID, b[1].PolicyID = ids["a"], ids["b"]
				b[0].Name, b[1].Name = "b", "a"
				return b
			},
			want: []string{"deleted a ra v1", "updated a rb v2", "created b ra v2"},
		},
		{
			name: "rename by id frees the name for a new policy",
			desired: func(ids map[string]string) []policy.Policy {
				b := baseline()
				b[0].PolicyID, b[0].Name = ids["a"], "a-renamed"
				return append(b, mkPolicy("a", "rnew"))
			},
			want: []string{"updated a-renamed ra v2", "created a rnew v1"},
		},
		{
			name: "role moves from a deleted policy to a new one",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				return append(b[:2], mkPolicy("c2", "rc"))
			},
			want: []string{"deleted c rc v1", "created c2 rc v1"},
		},
		{
			name: "role moves along a chain",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				b[0].AgentRole, b[1].AgentRole, b[2].AgentRole = "rb", "rc", "rd"
				return b
			},
			want: []string{"updated a rb v2", "updated b rc v2", "updated c rd v2"},
		},
		{
			name: "three-way rotation",
			desired: func(map[string]string) []policy.Policy {
				b := baseline()
				b[0].AgentRole, b[1].AgentRole, b[2].AgentRole = "rb", "rc", "ra"
				return b
			},
			want: []string{"updated a rb v2", "updated b rc v2", "updated c ra v2"},
		},
		{
			name: "exported policies sync to nothing",
			desired: func(map[string]string) []policy.Policy {
				return nil // replaced below by the state's own List
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newPolicyLog(t)
			gen := idSeq()
			n := 0
			first := syncRecord(t, h, baseline(), evT0, func() string { n++; return fmt.Sprintf("pol-%d", n) })
			require.Equal(t, []string{"created a ra v1", "created b rb v1", "created c rc v1"}, summary(first))
			ids := map[string]string{}
			for _, p := range h.live.List() {
				ids[p.Name] = p.PolicyID
			}
			desired := tc.desired(ids)
			if tc.name == "exported policies sync to nothing" {
				desired = h.live.List()
			}
			before := h.live.Set()
			evs, err := policy.Sync(h.live, desired, evT0.Add(time.Hour), gen)
			require.NoError(t, err)
			require.Same(t, before, h.live.Set(), "Sync never mutates")
			require.Equal(t, tc.want, summary(evs))
			h.record(evs...)
			if tc.check != nil {
				tc.check(t, h.live, evs)
			}
			requireMatches(t, desired, h.live)
			requireSameState(t, h.live, h.replay())

			again, err := policy.Sync(h.live, desired, evT0.Add(2*time.Hour), gen)
			require.NoError(t, err)
			require.Empty(t, again, "same desired set twice: no events")
		})
	}
}

// requireMatches checks that s holds exactly desired, ignoring server-managed
// fields (and policy_id where desired has none).
func requireMatches(t testing.TB, desired []policy.Policy, s *policy.State) {
	t.Helper()
	require.Equal(t, len(desired), s.Len())
	for _, d := range desired {
		c, ok := s.Set().ByName(d.Name)
		require.True(t, ok, d.Name)
		got := c.Policy()
		if d.PolicyID == "" {
			got.PolicyID = ""
		}
		got.Version, got.CreatedAt, got.UpdatedAt = d.Version, d.CreatedAt, d.UpdatedAt
		require.Equal(t, d, got)
	}
}

func TestSyncErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		desired  []policy.Policy
		newID    func() string
		invalid  []string
		conflict bool
	}{
		{
			name:    "every invalid field at once",
			desired: []policy.Policy{{Name: "a"}, {AgentRole: "rb", AllowedActions: []policy.Action{"exec"}}},
			invalid: []string{
				"policies[0].agent_role: required",
				"policies[1].name: required",
				"policies[1].allowed_actions[0]: unknown action 'exec' (want read, write or delete)",
			},
		},
		{name: "duplicate name in desired", desired: []policy.Policy{mkPolicy("a", "ra"), mkPolicy("a", "rx")}, conflict: true},
		{name: "generated id in use", desired: []policy.Policy{mkPolicy("d", "rd")}, newID: func() string { return "pol-a" }},
		{name: "generated id empty", desired: []policy.Policy{mkPolicy("d", "rd")}, newID: func() string { return "" }},
		{name: "no generator", desired: []policy.Policy{mkPolicy("d", "rd")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := twoPolicies(t)
			evs, err := policy.Sync(s, tc.desired, evT0, tc.newID)
			require.Error(t, err)
			require.Nil(t, evs)
			switch {
			case tc.invalid != nil:
				require.Equal(t, tc.invalid, fieldErrors(t, err))
			case tc.conflict:
				require.ErrorIs(t, err, policy.ErrConflict)
			default:
				require.NotErrorIs(t, err, policy.ErrConflict)
				require.NotErrorIs(t, err, policy.ErrInvalidPolicy)
			}
		})
	}
}

// TestSyncRandomized syncs random policy sets with random role and name
// permutations, renames, additions and removals, and checks after each sync
// that the events applied cleanly, the state equals the desired set, replay
// equals live and a second sync yields nothing.
func TestSyncRandomized(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	h := newPolicyLog(t)
	gen := idSeq()
	roles := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}
	names := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	now := evT0
	synced, events, recreated := 0, 0, 0
	for round := range 300 {
		now = now.Add(time.Minute)
		// Start from the current policies (by id or by name), then shuffle.
		var desired []policy.Policy
		for _, p := range h.live.List() {
			if rng.IntN(5) == 0 {
				continue // removed
			}
			if rng.IntN(2) == 0 {
				p.PolicyID = ""
			}
			desired = append(desired, p)
		}
		for rng.IntN(3) == 0 && len(desired) < len(roles) {
			desired = append(desired, policy.Policy{AllowedSources: []string{"s"}})
		}
		rr := slices.Clone(roles)
		rng.Shuffle(len(rr), func(i, j int) { rr[i], rr[j] = rr[j], rr[i] })
		nn := slices.Clone(names)
		rng.Shuffle(len(nn), func(i, j int) { nn[i], nn[j] = nn[j], nn[i] })
		for i := range desired {
			if rng.IntN(2) == 0 || desired[i].AgentRole == "" {
				desired[i].AgentRole = rr[i]
			}
			if desired[i].PolicyID != "" && rng.IntN(2) == 0 || desired[i].Name == "" {
				desired[i].Name = nn[i]
			}
			if rng.IntN(4) == 0 {
				desired[i].Description = fmt.Sprintf("round %d", round)
			}
		}
		if rng.IntN(3) == 0 {
			// Permute the roles and names among the policies: swaps and
			// rotations, which need cycle breaking.
			perm := rng.Perm(len(desired))
			rs, ns := make([]string, len(desired)), make([]string, len(desired))
			for i, j := range perm {
				rs[i], ns[i] = desired[j].AgentRole, desired[j].Name
			}
			for i := range desired {
				desired[i].AgentRole = rs[i]
				if desired[i].PolicyID != "" {
					desired[i].Name = ns[i]
				}
			}
		}
		if policy.ValidateSet(desired) != nil {
			continue // the random edits clashed; not what this test is about
		}
		evs, err := policy.Sync(h.live, desired, now, gen)
		require.NoError(t, err, "round %d", round)
		h.record(evs...)
		requireMatches(t, desired, h.live)
		again, err := policy.Sync(h.live, desired, now, gen)
		require.NoError(t, err)
		require.Empty(t, again, "round %d", round)
		synced++
		events += len(evs)
		for _, ev := range evs {
			if c, ok := ev.(policy.PolicyCreated); ok && c.Policy.Version > 1 {
				recreated++
			}
		}
	}
	t.Logf("%d syncs, %d events, %d cycle breaks", synced, events, recreated)
	require.Greater(t, synced, 50)
	requireSameState(t, h.live, h.replay())
}
