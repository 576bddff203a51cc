package policy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

// twoPolicies returns a state with "a" (role ra, pol-a) and "b" (role rb,
// pol-b), both at version 1.
func twoPolicies(t testing.TB) *policy.State {
	t.Helper()
	h := newPolicyLog(t)
	for _, p := range []policy.Policy{mkPolicy("a", "ra"), mkPolicy("b", "rb")} {
		ev, err := policy.Create(h.live, p, evT0, "pol-"+p.Name)
		require.NoError(t, err)
		h.record(ev)
	}
	return h.live
}

// conflictFields returns the Field of every *ConflictError in err.
func conflictFields(t testing.TB, err error) []string {
	t.Helper()
	require.ErrorIs(t, err, policy.ErrConflict)
	require.NotErrorIs(t, err, policy.ErrInvalidPolicy)
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []string
	for _, e := range errs {
		var ce *policy.ConflictError
		require.ErrorAs(t, e, &ce)
		out = append(out, ce.Field+" "+ce.Value)
	}
	return out
}

func TestCreate(t *testing.T) {
	t.Parallel()
	withID := mkPolicy("c", "rc")
	withID.PolicyID = "pol-given"
	managed := mkPolicy("c", "rc")
	managed.Version, managed.CreatedAt, managed.UpdatedAt = 9, evT0.Add(-time.Hour), evT0.Add(-time.Hour)
	for _, tc := range []struct {
		name      string
		p         policy.Policy
		newID     string
		wantID    string
		conflicts []string // want *ConflictError for these "field value"s
		invalid   []string // want *FieldError for these "field: problem"s
		otherErr  bool
	}{
		{name: "generated id", p: mkPolicy("c", "rc"), newID: "pol-new", wantID: "pol-new"},
		{name: "given id wins", p: withID, newID: "pol-new", wantID: "pol-given"},
		{name: "managed fields ignored", p: managed, newID: "pol-new", wantID: "pol-new"},
		{name: "second policy of a role", p: mkPolicy("c", "ra"), newID: "pol-new", wantID: "pol-new"},
		{name: "name taken", p: mkPolicy("a", "rc"), newID: "pol-new", conflicts: []string{"name a"}},
		{name: "id taken", p: withIDOf(mkPolicy("c", "rc"), "pol-b"), conflicts: []string{"policy_id pol-b"}},
		{name: "generated id taken", p: mkPolicy("c", "rc"), newID: "pol-a", conflicts: []string{"policy_id pol-a"}},
		{
			name: "every conflict at once", p: withIDOf(mkPolicy("a", "rb"), "pol-a"),
			conflicts: []string{"name a", "policy_id pol-a"},
		},
		{
			name: "invalid wins over conflict",
			p:    policy.Policy{Name: "a", AgentRole: "ra", AllowedActions: []policy.Action{"exec"}, SessionTTLMinutes: ptr(0)},
			invalid: []string{
				"allowed_actions[0]: unknown action 'exec' (want read, write or delete)",
				"session_ttl_minutes: must be positive, got 0",
			},
		},
		{name: "no id at all", p: mkPolicy("c", "rc"), otherErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := twoPolicies(t)
			before := s.Set()
			ev, err := policy.Create(s, tc.p, evT0.Add(time.Minute), tc.newID)
			require.Same(t, before, s.Set(), "deciders never mutate")
			switch {
			case tc.conflicts != nil:
				require.Equal(t, tc.conflicts, conflictFields(t, err))
				return
			case tc.invalid != nil:
				require.Equal(t, tc.invalid, fieldErrors(t, err))
				require.NotErrorIs(t, err, policy.ErrConflict)
				return
			case tc.otherErr:
				require.Error(t, err)
				require.NotErrorIs(t, err, policy.ErrConflict)
				require.NotErrorIs(t, err, policy.ErrInvalidPolicy)
				return
			}
			require.NoError(t, err)
			want := tc.p
			want.PolicyID = tc.wantID
			want.Version = 1
			want.CreatedAt = evT0.Add(time.Minute)
			want.UpdatedAt = want.CreatedAt
			require.Equal(t, policy.PolicyCreated{Policy: want}, ev)
			require.NoError(t, s.Apply(ev))
			got, ok := s.ByID(tc.wantID)
			require.True(t, ok)
			require.Equal(t, want, got)
		})
	}
}

func withIDOf(p policy.Policy, id string) policy.Policy {
	p.PolicyID = id
	return p
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		id        string
		p         policy.Policy
		notFound  bool
		conflicts []string
		invalid   []string
	}{
		{name: "content change", id: "pol-a", p: withSources(mkPolicy("a", "ra"), "crm")},
		{name: "rename and re-role", id: "pol-a", p: mkPolicy("a2", "ra2")},
		{name: "body id equal to path id", id: "pol-a", p: withIDOf(mkPolicy("a", "ra"), "pol-a")},
		{name: "unknown id", id: "pol-x", p: mkPolicy("a", "ra"), notFound: true},
		{name: "unknown id beats invalid body", id: "pol-x", p: policy.Policy{}, notFound: true},
		{
			name: "body id differs", id: "pol-a", p: withIDOf(policy.Policy{Name: "a"}, "pol-b"),
			invalid: []string{
				"policy_id: must be empty or equal to the policy being updated ('pol-a'), got 'pol-b'",
				"agent_role: required",
			},
		},
		{name: "role of another policy", id: "pol-a", p: mkPolicy("a", "rb")},
		{name: "name of another policy", id: "pol-a", p: mkPolicy("b", "ra"), conflicts: []string{"name b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := twoPolicies(t)
			before := s.Set()
			now := evT0.Add(time.Hour)
			ev, err := policy.Update(s, tc.id, tc.p, now)
			require.Same(t, before, s.Set(), "deciders never mutate")
			switch {
			case tc.notFound:
				require.ErrorIs(t, err, policy.ErrNotFound)
				return
			case tc.conflicts != nil:
				require.Equal(t, tc.conflicts, conflictFields(t, err))
				return
			case tc.invalid != nil:
				require.Equal(t, tc.invalid, fieldErrors(t, err))
				return
			}
			require.NoError(t, err)
			p := ev.Policy
			assert.Equal(t, tc.id, p.PolicyID)
			assert.Equal(t, 2, p.Version)
			assert.Equal(t, evT0, p.CreatedAt, "created_at kept")
			assert.Equal(t, now, p.UpdatedAt)
			require.NoError(t, s.Apply(ev))
			got, _ := s.ByID(tc.id)
			require.Equal(t, p, got)
		})
	}
}

func withSources(p policy.Policy, sources ...string) policy.Policy {
	p.AllowedSources = sources
	return p
}

func TestVersionsIncrement(t *testing.T) {
	t.Parallel()
	h := newPolicyLog(t)
	ev, err := policy.Create(h.live, mkPolicy("a", "ra"), evT0, "pol-a")
	require.NoError(t, err)
	h.record(ev)
	for want := 2; want <= 5; want++ {
		p, _ := h.live.ByID("pol-a")
		p.Version = 1 // ignored
		upd, err := policy.Update(h.live, "pol-a", p, evT0.Add(time.Duration(want)*time.Minute))
		require.NoError(t, err)
		require.Equal(t, want, upd.Policy.Version)
		h.record(upd)
	}
	requireSameState(t, h.live, h.replay())
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := twoPolicies(t)
	_, err := policy.Delete(s, "pol-x", evT0)
	require.ErrorIs(t, err, policy.ErrNotFound)
	require.True(t, errors.Is(err, policy.ErrNotFound))

	now := evT0.In(time.FixedZone("EST", -5*3600))
	ev, err := policy.Delete(s, "pol-a", now)
	require.NoError(t, err)
	require.Equal(t, policy.PolicyDeleted{PolicyID: "pol-a", Name: "a", AgentRole: "ra", Version: 1, DeletedAt: evT0}, ev)
	require.Equal(t, 2, s.Len(), "deciders never mutate")
	require.NoError(t, s.Apply(ev))
	_, ok := s.ByID("pol-a")
	require.False(t, ok)
	_, ok = s.Set().ByRole("ra")
	require.False(t, ok)

	// The role and name are free again.
	again, err := policy.Create(s, mkPolicy("a", "ra"), evT0, "pol-a2")
	require.NoError(t, err)
	require.NoError(t, s.Apply(again))
}

func TestCreateConflictNamesNoMintedID(t *testing.T) {
	t.Parallel()
	s := twoPolicies(t)
	_, err := policy.Create(s, mkPolicy("a", "rc"), evT0, "pol-minted")
	require.ErrorIs(t, err, policy.ErrConflict)
	assert.NotContains(t, err.Error(), "pol-minted", "a refused policy never got its id")
}
