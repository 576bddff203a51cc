package agents

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
	"github.com/custos-dev/custos/domain/internal/wire/wiretest"
)

// Internal test: every field of Agent, with nil, empty and full lists,
// survives a snapshot, so a field added to Agent but not to the snapshot
// fails here.
func TestSnapshotKeepsEveryField(t *testing.T) {
	t.Parallel()
	var s State
	for i, lists := range wiretest.Variants {
		var a Agent
		wiretest.Fill(&a, lists)
		a.AgentID = fmt.Sprintf("agent-%d", i)
		a.Status = []Status{StatusDraft, StatusApproved, StatusSuspended, StatusRetired}[i%4]
		s.byID.Set(a.AgentID, &a)
	}
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	var got State
	require.NoError(t, got.UnmarshalSnapshot(b))
	require.Equal(t, s.byID, got.byID)
	again, err := got.MarshalSnapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, again))
}

func TestSnapshotRejects(t *testing.T) {
	t.Parallel()
	var a Agent
	wiretest.Fill(&a, wiretest.Lists{EmptyAt: -1, NilAt: -1})
	a.Status = StatusApproved
	var s State
	s.byID.Set(a.AgentID, &a)
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)

	bad := append([]byte(nil), b...)
	bad[0] = SnapshotVersion + 1
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(bad), wire.ErrVersion)

	a.Status = "paused"
	b2, err := s.MarshalSnapshot()
	require.NoError(t, err)
	require.ErrorIs(t, (&State{}).UnmarshalSnapshot(b2), wire.ErrCorrupt, "unknown status")

	var kept State
	kept.byID.Set("kept", &Agent{AgentID: "kept"})
	require.Error(t, kept.UnmarshalSnapshot(b[:len(b)-1]))
	require.Equal(t, 1, kept.Len(), "a failed restore leaves the state unchanged")
}
