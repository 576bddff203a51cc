package policy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
	"github.com/custos-dev/custos/domain/internal/wire/wiretest"
)

// Internal test: every field of Policy, recursively, with nil, empty and
// full lists at each depth, survives the snapshot encoding, so a field added
// to Policy but not to the snapshot fails here. (These policies need not be
// valid; the State round trip is tested in the domain package.)
func TestSnapshotPolicyKeepsEveryField(t *testing.T) {
	t.Parallel()
	for _, lists := range wiretest.Variants {
		var p Policy
		wiretest.Fill(&p, lists)
		w := wire.NewWriter(0)
		putPolicy(w, &p)
		r := wire.NewReader(w.Bytes())
		got := getPolicy(r)
		require.NoError(t, r.Done())
		require.Equal(t, p, got, "lists %+v", lists)
	}
}

func TestSnapshotRejects(t *testing.T) {
	t.Parallel()
	valid := Policy{Name: "n", PolicyID: "pol-1", AgentRole: "r", Version: 1}
	c, err := Compile(valid)
	require.NoError(t, err)
	var s State
	s.set.Store((*Set)(nil).With(c))
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)

	var got State
	require.NoError(t, got.UnmarshalSnapshot(b))
	require.Equal(t, s.List(), got.List())

	bad := append([]byte(nil), b...)
	bad[0] = SnapshotVersion + 1
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(bad), wire.ErrVersion)

	// A policy that does not compile.
	w := wire.NewWriter(0)
	w.Uvarint(SnapshotVersion)
	w.Bool(true)
	w.Uvarint(1)
	putPolicy(w, &Policy{Name: "no role"})
	require.ErrorIs(t, got.UnmarshalSnapshot(w.Bytes()), wire.ErrCorrupt)
	require.Equal(t, s.List(), got.List(), "a failed restore leaves the state unchanged")

	// Two policies with one name.
	w = wire.NewWriter(0)
	w.Uvarint(SnapshotVersion)
	w.Bool(true)
	w.Uvarint(2)
	putPolicy(w, &valid)
	other := valid
	other.PolicyID, other.AgentRole = "pol-2", "other-role"
	putPolicy(w, &other)
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(w.Bytes()), wire.ErrCorrupt)
}
