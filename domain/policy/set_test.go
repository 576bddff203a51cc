package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

func compiled(t testing.TB, name, id, role string) *policy.Compiled {
	t.Helper()
	c, err := policy.Compile(policy.Policy{Name: name, PolicyID: id, AgentRole: role, AllowedSources: []string{"s"}})
	require.NoError(t, err)
	return c
}

func TestSetLookups(t *testing.T) {
	t.Parallel()
	a := compiled(t, "a", "id-a", "role-a")
	b := compiled(t, "b", "id-b", "role-b")
	s, err := policy.NewSet(a, b)
	require.NoError(t, err)
	require.Equal(t, 2, s.Len())

	for _, tc := range []struct {
		name   string
		lookup func(string) (*policy.Compiled, bool)
		key    string
		want   *policy.Compiled
	}{
		{name: "by role", lookup: s.ByRole, key: "role-b", want: b},
		{name: "by name", lookup: s.ByName, key: "a", want: a},
		{name: "by id", lookup: s.ByID, key: "id-b", want: b},
		{name: "missing role", lookup: s.ByRole, key: "role-x"},
		{name: "empty id", lookup: s.ByID, key: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tc.lookup(tc.key)
			require.Equal(t, tc.want != nil, ok)
			require.Same(t, tc.want, got)
		})
	}
	require.Equal(t, []*policy.Compiled{a, b}, s.All())
}

func TestNilSetIsEmpty(t *testing.T) {
	t.Parallel()
	var s *policy.Set
	_, ok := s.ByRole("r")
	require.False(t, ok)
	require.Zero(t, s.Len())
	require.Nil(t, s.Without("x"))
	a := compiled(t, "a", "id-a", "role-a")
	require.NoError(t, s.Conflict(a))
	require.Equal(t, 1, s.With(a).Len())
}

func TestNewSetRejectsDuplicates(t *testing.T) {
	t.Parallel()
	_, err := policy.NewSet(compiled(t, "a", "id-a", "role"), compiled(t, "a", "id-b", "other"))
	require.ErrorIs(t, err, policy.ErrConflict)
	require.ErrorContains(t, err, "duplicate name 'a'")
}

func TestSetHoldsSeveralPoliciesPerRole(t *testing.T) {
	t.Parallel()
	a := compiled(t, "a", "id-a", "role")
	b := compiled(t, "b", "id-b", "role")
	s, err := policy.NewSet(a, b)
	require.NoError(t, err)
	assert.Equal(t, []*policy.Compiled{a, b}, s.RolePolicies("role"))
	_, ok := s.ByRole("role")
	assert.False(t, ok, "ByRole answers only a role's only policy")

	s2 := s.Without("id-a")
	got, ok := s2.ByRole("role")
	require.True(t, ok)
	assert.Same(t, b, got)
	assert.Len(t, s.RolePolicies("role"), 2, "Without must not change the receiver")

	b2 := compiled(t, "b", "id-b", "other")
	s3 := s.With(b2)
	assert.Equal(t, []*policy.Compiled{a}, s3.RolePolicies("role"), "an update that moves a policy to another role")
	assert.Equal(t, []*policy.Compiled{b2}, s3.RolePolicies("other"))
}

func TestSetCopyOnWrite(t *testing.T) {
	t.Parallel()
	a := compiled(t, "a", "id-a", "role-a")
	b := compiled(t, "b", "id-b", "role-b")
	s1 := (*policy.Set)(nil).With(a)
	s2 := s1.With(b)
	require.Equal(t, 1, s1.Len(), "With must not change the receiver")
	require.Equal(t, 2, s2.Len())

	// An update with the same policy_id replaces, even when renamed and re-roled.
	a2 := compiled(t, "a-renamed", "id-a", "role-a2")
	require.NoError(t, s2.Conflict(a2))
	s3 := s2.With(a2)
	require.Equal(t, 2, s3.Len())
	_, ok := s3.ByRole("role-a")
	require.False(t, ok)
	_, ok = s3.ByName("a")
	require.False(t, ok)
	got, ok := s3.ByID("id-a")
	require.True(t, ok)
	require.Same(t, a2, got)
	require.Equal(t, []*policy.Compiled{a2, b}, s3.All())
	got, _ = s2.ByID("id-a")
	require.Same(t, a, got, "old snapshot unchanged")

	s4 := s3.Without("id-b")
	require.Equal(t, 1, s4.Len())
	require.Equal(t, 2, s3.Len())
	_, ok = s4.ByRole("role-b")
	require.False(t, ok)
	require.Same(t, s4, s4.Without("missing"))
}

func TestSetConflict(t *testing.T) {
	t.Parallel()
	s, err := policy.NewSet(compiled(t, "a", "id-a", "role-a"), compiled(t, "b", "", "role-b"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		c    *policy.Compiled
		want string
	}{
		{name: "new policy", c: compiled(t, "c", "id-c", "role-c")},
		{name: "update of itself", c: compiled(t, "a", "id-a", "role-a")},
		{name: "same role, other id", c: compiled(t, "c", "id-c", "role-a")},
		{name: "same name, other id", c: compiled(t, "a", "id-c", "role-c"),
			want: "policy: duplicate name 'a': existing policy (name 'a', agent_role 'role-a', policy_id 'id-a') and new policy (name 'a', agent_role 'role-c', policy_id 'id-c')"},
		{name: "same role, no ids", c: compiled(t, "c", "", "role-b")},
		{name: "same name, no ids", c: compiled(t, "b", "", "role-c"),
			want: "policy: duplicate name 'b': existing policy (name 'b', agent_role 'role-b') and new policy (name 'b', agent_role 'role-c')"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.Conflict(tc.c)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, policy.ErrConflict)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestSetConcurrentReaders(t *testing.T) {
	t.Parallel()
	s, err := policy.NewSet(compiled(t, "a", "id-a", "role-a"))
	require.NoError(t, err)
	snap := s
	x := compiled(t, "x", "id-x", "role-x")
	done := make(chan bool)
	go func() {
		for range 100 {
			_ = snap.With(x).Without("id-a")
		}
		done <- true
	}()
	for range 100 {
		c, ok := snap.ByRole("role-a")
		require.True(t, ok)
		require.True(t, c.Evaluate(policy.Request{SourceID: "s", Sensitivity: "low"}, 0).Allowed)
	}
	<-done
	require.Equal(t, 1, snap.Len())
}
