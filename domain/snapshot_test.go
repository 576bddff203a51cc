package domain_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// eventGen produces random events that fit the state they are applied to:
// every kind of key, policy and agent change and decisions that start,
// continue or miss sessions.
type eventGen struct {
	rng      *rand.Rand
	now      time.Time
	seq      uint64
	n        int
	keyIDs   []string
	hashes   [][32]byte
	sessions []string
}

func newEventGen(seed uint64) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0}
}

func (g *eventGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func ptrTo[T any](v T) *T { return &v }

// policyShape returns a valid policy of a random shape, nil and empty lists
// included.
func (g *eventGen) policyShape(name, role, id string, version int) policy.Policy {
	var p policy.Policy
	switch g.rng.IntN(3) {
	case 0:
		p = policy.Policy{}
	case 1:
		p = policy.Policy{AllowedTasks: []string{}, AllowedActions: []policy.Action{}, AllowedSources: []string{"crm"},
			TaskBindings: []policy.TaskBinding{{Task: "t", PermittedSources: []string{}, Actions: []policy.Action{}}}}
	default:
		p = policy.Policy{
			Description: "advisor assistant", Industry: "finance", Organization: "acme", Division: "wealth", ProcessGroup: "advice",
			Regulations: []policy.Regulation{{ID: "finra-2111", Name: "Suitability",
				ApplicableRules: []policy.RegulationRule{{Rule: "know your customer", HowEnforced: "task binding"}}}},
			PermittedAgentIDs:         []string{"advisor-*", "agent-7"},
			AllowedSources:            []string{"crm", "portfolio"},
			DeniedSources:             []string{"hr"},
			AllowedTasks:              []string{"kyc"},
			DeniedTasks:               []string{"trading"},
			MaxSensitivity:            ptrTo(policy.LevelHigh),
			RequireTaskForSensitivity: ptrTo(policy.LevelMedium),
			TaskBindings:              []policy.TaskBinding{{Task: "kyc", PermittedSources: []string{"crm"}, Actions: []policy.Action{"read"}}},
			AllowedActions:            []policy.Action{"read", "write"},
			DeniedActions:             []policy.Action{"delete"},
			SessionTTLMinutes:         ptrTo(60 + g.rng.IntN(60)),
			SensitivityDecay:          []policy.DecayStep{{AfterMinutes: 0, MaxSensitivity: "high"}, {AfterMinutes: 30, MaxSensitivity: "medium"}},
			RequirePrincipalEntitlements: []policy.EntitlementRule{
				{Sources: []string{"portfolio"}, Actions: []policy.Action{"read"}, RequireAny: []string{"group:licensed"}, RequireAll: []string{"x:y"}},
			},
		}
	}
	p.Name, p.AgentRole, p.PolicyID, p.Version = name, role, id, version
	p.CreatedAt, p.UpdatedAt = g.now, g.now
	return p
}

// next returns an event that fits s and its meta.
func (g *eventGen) next(s *domain.State) (domain.Meta, domain.Event) {
	g.n++
	g.seq++
	g.now = g.now.Add(time.Duration(g.rng.IntN(5000)) * time.Millisecond)
	m := domain.Meta{Seq: g.seq, ID: fmt.Sprintf("01EV%022d", g.seq), Time: g.now, Actor: "key_actor"}
	for {
		if ev := g.try(s); ev != nil {
			return m, ev
		}
	}
}

func (g *eventGen) try(s *domain.State) domain.Event {
	switch r := g.rng.IntN(100); {
	case r < 8:
		var h [32]byte
		for i := range h {
			h[i] = byte(g.rng.UintN(256))
		}
		id := fmt.Sprintf("key_%026d", g.n)
		g.keyIDs = append(g.keyIDs, id)
		g.hashes = append(g.hashes, h)
		agent := ""
		if g.rng.IntN(2) == 0 {
			agent = fmt.Sprintf("agent-%d", g.rng.IntN(10))
		}
		return keys.KeyCreated{KeyID: id, Name: "k" + id[len(id)-3:], Scope: []keys.Scope{keys.ScopeAdmin, keys.ScopeRead, keys.ScopeEvaluate}[g.rng.IntN(3)],
			Prefix: "cst_" + id[len(id)-4:], KeyHash: hex.EncodeToString(h[:]), CreatedAt: g.now, ExpiresAt: g.now.Add(90 * 24 * time.Hour), AgentID: agent}
	case r < 11 && len(g.keyIDs) > 0:
		old, _ := s.Keys.ByID(g.pick(g.keyIDs))
		if old.RotatedTo != "" {
			return nil
		}
		var h [32]byte
		for i := range h {
			h[i] = byte(g.rng.UintN(256))
		}
		id := fmt.Sprintf("key_%026d", g.n)
		g.keyIDs = append(g.keyIDs, id)
		g.hashes = append(g.hashes, h)
		return keys.KeyRotated{OldKeyID: old.KeyID, OldRevokedAt: g.now.Add(time.Duration(g.rng.IntN(3)) * time.Hour),
			NewKey: keys.KeyCreated{KeyID: id, Name: old.Name, Scope: old.Scope, Prefix: "cst_" + id[len(id)-4:], KeyHash: hex.EncodeToString(h[:]),
				CreatedAt: g.now, ExpiresAt: g.now.Add(90 * 24 * time.Hour), AgentID: old.AgentID, RotatedFrom: old.KeyID}}
	case r < 13 && len(g.keyIDs) > 0:
		return keys.KeyRevoked{KeyID: g.pick(g.keyIDs), RevokedAt: g.now}
	case r < 20 && len(g.keyIDs) > 0:
		return keys.KeyUsed{KeyID: g.pick(g.keyIDs), UsedAt: g.now}
	case r < 24:
		return policy.PolicyCreated{Policy: g.policyShape(fmt.Sprintf("p-%d", g.n), fmt.Sprintf("role-%d", g.n), fmt.Sprintf("pol_%d", g.n), 1)}
	case r < 27 && s.Policies.Len() > 0:
		all := s.Policies.List()
		old := all[g.rng.IntN(len(all))]
		name := old.Name
		if g.rng.IntN(2) == 0 {
			name = fmt.Sprintf("p-%d", g.n)
		}
		p := g.policyShape(name, old.AgentRole, old.PolicyID, old.Version+1)
		p.CreatedAt = old.CreatedAt
		return policy.PolicyUpdated{Policy: p}
	case r < 28 && s.Policies.Len() > 0:
		all := s.Policies.List()
		old := all[g.rng.IntN(len(all))]
		return policy.PolicyDeleted{PolicyID: old.PolicyID, Name: old.Name, AgentRole: old.AgentRole, Version: old.Version, DeletedAt: g.now}
	case r < 32:
		a := agents.Agent{AgentID: fmt.Sprintf("agent-%d", g.n), AgentRole: fmt.Sprintf("role-%d", g.rng.IntN(20)), Status: agents.StatusDraft,
			CreatedAt: g.now, UpdatedAt: g.now, StatusChangedAt: g.now}
		if g.rng.IntN(2) == 0 {
			a.DisplayName, a.Description, a.Owner, a.OwnerTeam, a.Framework, a.PolicyName = "Agent", "does things", "ann", "team-a", "langchain", "p-1"
			a.PermittedRoles = []string{"role-x", "role-y"}
		}
		return agents.AgentRegistered{Agent: a}
	case r < 34 && s.Agents.Len() > 0:
		all := s.Agents.List(agents.Filter{AllStatuses: true})
		a := all[g.rng.IntN(len(all))]
		a.Description = fmt.Sprintf("update %d", g.n)
		a.PermittedRoles = nil
		if g.rng.IntN(2) == 0 {
			a.PermittedRoles = []string{fmt.Sprintf("role-%d", g.n)}
		}
		a.UpdatedAt = g.now
		return agents.AgentUpdated{Agent: a}
	case r < 36 && s.Agents.Len() > 0:
		all := s.Agents.List(agents.Filter{AllStatuses: true})
		a := all[g.rng.IntN(len(all))]
		to := []agents.Status{agents.StatusApproved, agents.StatusSuspended, agents.StatusRetired}[g.rng.IntN(3)]
		return agents.AgentStatusChanged{AgentID: a.AgentID, From: a.Status, To: to, ChangedAt: g.now}
	case r >= 36:
		var sid string
		if len(g.sessions) == 0 || g.rng.IntN(10) == 0 {
			sid = fmt.Sprintf("sess-%d", g.n)
			g.sessions = append(g.sessions, sid)
		} else {
			sid = g.pick(g.sessions)
		}
		m := decision.Made{Request: policy.Request{AgentRole: "role-1", AgentID: "agent-1", UserID: "u", SourceID: fmt.Sprintf("src-%d", g.rng.IntN(6)),
			Sensitivity: policy.LevelLow, SessionID: sid}, Decision: decision.Deny, KeyID: "key_actor", EvaluatedAt: g.now}
		if g.rng.IntN(3) > 0 {
			m.Decision = decision.Allow
		}
		if _, ok := s.Sessions.Get(sid); !ok && g.rng.IntN(8) > 0 {
			st := &decision.SessionStarted{SessionID: sid, OwnerRole: "role-1", OwnerAgentID: "agent-1", StartedAt: g.now}
			if g.rng.IntN(2) == 0 {
				st.ExpiresAt = ptrTo(g.now.Add(time.Hour))
			}
			m.SessionStarted = st
		}
		return m
	}
	return nil
}

// requireSameReads compares every read the state offers.
func requireSameReads(t *testing.T, g *eventGen, want, got *domain.State) {
	t.Helper()
	require.Equal(t, want.Keys.Len(), got.Keys.Len())
	require.Equal(t, want.Keys.List(), got.Keys.List())
	for i, id := range g.keyIDs {
		wk, wok := want.Keys.ByID(id)
		gk, gok := got.Keys.ByID(id)
		require.Equal(t, wok, gok, id)
		require.Equal(t, wk, gk, id)
		wk, wok = want.Keys.ByHash(g.hashes[i])
		gk, gok = got.Keys.ByHash(g.hashes[i])
		require.Equal(t, wok, gok, id)
		require.Equal(t, wk, gk, id)
	}

	require.Equal(t, want.Policies.Len(), got.Policies.Len())
	require.Equal(t, want.Policies.List(), got.Policies.List())
	require.Equal(t, want.Policies.Set() == nil, got.Policies.Set() == nil)
	wantAll, gotAll := want.Policies.Set().All(), got.Policies.Set().All()
	require.Equal(t, wantAll, gotAll, "compiled policies, in set order")
	for _, c := range wantAll {
		for _, lookup := range []func(*policy.Set) (*policy.Compiled, bool){
			func(s *policy.Set) (*policy.Compiled, bool) { return s.ByID(c.ID()) },
			func(s *policy.Set) (*policy.Compiled, bool) { return s.ByName(c.Name()) },
			func(s *policy.Set) (*policy.Compiled, bool) { return s.ByRole(c.Role()) },
		} {
			wc, wok := lookup(want.Policies.Set())
			gc, gok := lookup(got.Policies.Set())
			require.Equal(t, wok, gok)
			require.Equal(t, wc, gc)
		}
		p, ok := got.Policies.ByID(c.ID())
		require.True(t, ok)
		require.Equal(t, c.Policy(), p)
	}

	require.Equal(t, want.Agents.Len(), got.Agents.Len())
	require.Equal(t, want.Agents.List(agents.Filter{AllStatuses: true}), got.Agents.List(agents.Filter{AllStatuses: true}))
	for _, a := range want.Agents.List(agents.Filter{AllStatuses: true}) {
		ga, ok := got.Agents.ByID(a.AgentID)
		require.True(t, ok)
		require.Equal(t, a, ga)
		require.Equal(t, want.Agents.List(agents.Filter{Status: string(a.Status), Owner: a.Owner}),
			got.Agents.List(agents.Filter{Status: string(a.Status), Owner: a.Owner}))
	}

	require.Equal(t, want.Sessions.Len(), got.Sessions.Len())
	for _, id := range append(g.sessions, "never-seen") {
		ws, wok := want.Sessions.Get(id)
		gs, gok := got.Sessions.Get(id)
		require.Equal(t, wok, gok, id)
		require.Equal(t, ws, gs, id)
	}
}

func TestSnapshotRoundTripRandom(t *testing.T) {
	t.Parallel()
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			g := newEventGen(eventstoretest.Seed(t))
			live := domain.NewState()
			for range 200 + g.rng.IntN(800) {
				m, ev := g.next(live)
				require.NoError(t, live.Apply(m, ev))
			}
			snap, err := live.MarshalSnapshot()
			require.NoError(t, err)
			restored := domain.NewState()
			require.NoError(t, restored.UnmarshalSnapshot(snap))
			requireSameReads(t, g, live, restored)

			again, err := restored.MarshalSnapshot()
			require.NoError(t, err)
			require.True(t, bytes.Equal(snap, again), "equal states must give equal bytes")
			frozen, err := live.FrozenCopy().MarshalSnapshot()
			require.NoError(t, err)
			require.True(t, bytes.Equal(snap, frozen), "a frozen copy encodes like the state")

			// Both go on the same way.
			for range 300 {
				m, ev := g.next(live)
				errLive := live.Apply(m, ev)
				errRestored := restored.Apply(m, ev)
				require.Equal(t, errLive, errRestored)
			}
			requireSameReads(t, g, live, restored)
		})
	}
}

func TestSnapshotEmptyState(t *testing.T) {
	t.Parallel()
	snap, err := domain.NewState().MarshalSnapshot()
	require.NoError(t, err)
	s := domain.NewState()
	require.NoError(t, s.UnmarshalSnapshot(snap))
	requireSameReads(t, newEventGen(1), domain.NewState(), s)
	require.Nil(t, s.Policies.Set())
}

func TestSnapshotRejectsBadInput(t *testing.T) {
	t.Parallel()
	g := newEventGen(7)
	live := domain.NewState()
	for range 300 {
		m, ev := g.next(live)
		require.NoError(t, live.Apply(m, ev))
	}
	snap, err := live.MarshalSnapshot()
	require.NoError(t, err)

	t.Run("unknown version", func(t *testing.T) {
		t.Parallel()
		bad := append([]byte(nil), snap...)
		bad[0] = domain.SnapshotVersion + 1
		err := domain.NewState().UnmarshalSnapshot(bad)
		require.ErrorIs(t, err, domain.ErrSnapshotVersion)
	})
	t.Run("unknown part version", func(t *testing.T) {
		t.Parallel()
		// The keys part starts after the state version and its length.
		bad := append([]byte(nil), snap...)
		_, n := binary.Uvarint(snap[1:])
		require.Positive(t, n)
		bad[1+n] = keys.SnapshotVersion + 1
		require.ErrorIs(t, domain.NewState().UnmarshalSnapshot(bad), domain.ErrSnapshotVersion)
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		for n := range len(snap) {
			s := domain.NewState()
			err := s.UnmarshalSnapshot(snap[:n])
			require.Error(t, err, "prefix of %d bytes", n)
			require.Equal(t, 0, s.Keys.Len()+s.Agents.Len()+s.Sessions.Len()+s.Policies.Len(), "a failed restore leaves the state unchanged")
		}
	})
	t.Run("trailing bytes", func(t *testing.T) {
		t.Parallel()
		require.ErrorIs(t, domain.NewState().UnmarshalSnapshot(append(append([]byte(nil), snap...), 0)), domain.ErrSnapshotCorrupt)
	})
	t.Run("flipped bytes never panic", func(t *testing.T) {
		t.Parallel()
		for i := range len(snap) {
			bad := append([]byte(nil), snap...)
			bad[i] ^= 0xff
			_ = domain.NewState().UnmarshalSnapshot(bad)
		}
	})
}

// FuzzUnmarshalSnapshot checks that no input panics or allocates without
// bound.
func FuzzUnmarshalSnapshot(f *testing.F) {
	g := newEventGen(3)
	live := domain.NewState()
	for range 100 {
		m, ev := g.next(live)
		if err := live.Apply(m, ev); err != nil {
			f.Fatal(err)
		}
	}
	snap, err := live.MarshalSnapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snap)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := domain.NewState()
		if err := s.UnmarshalSnapshot(b); err != nil {
			if !errors.Is(err, domain.ErrSnapshotCorrupt) && !errors.Is(err, domain.ErrSnapshotVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := s.MarshalSnapshot()
		require.NoError(t, err)
		require.NoError(t, domain.NewState().UnmarshalSnapshot(again))
	})
}

// TestFrozenCopyWhileApplying encodes frozen copies on other goroutines
// while the state keeps applying events (run with -race): each encoding
// equals that of a deep Clone taken at the same moment. Copies are taken
// often and several are in flight at once, so the live state keeps
// writing to shards, key entries and session records the copies share.
func TestFrozenCopyWhileApplying(t *testing.T) {
	t.Parallel()
	g := newEventGen(eventstoretest.Seed(t))
	live := domain.NewState()
	type job struct {
		frozen *domain.State
		want   []byte
		at     int
	}
	jobs := make(chan job, 8)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for j := range jobs {
				got, err := j.frozen.MarshalSnapshot()
				if err != nil || !bytes.Equal(j.want, got) {
					t.Errorf("frozen copy taken after event %d encoded differently (err %v)", j.at, err)
				}
			}
		})
	}
	copies := 0
	for i := range 6000 {
		m, ev := g.next(live)
		require.NoError(t, live.Apply(m, ev))
		if i%37 == 36 {
			want, err := live.Clone().MarshalSnapshot()
			require.NoError(t, err)
			jobs <- job{frozen: live.FrozenCopy(), want: want, at: i}
			copies++
		}
	}
	close(jobs)
	wg.Wait()
	require.Equal(t, 6000/37, copies)
}
