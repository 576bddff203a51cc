package decision

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
	"github.com/custos-dev/custos/domain/internal/wire/wiretest"
)

// Internal test: every field of Session, with nil, empty and full lists,
// survives a snapshot, so a field added to Session but not to the snapshot
// fails here.
func TestSnapshotKeepsEveryField(t *testing.T) {
	t.Parallel()
	var s Sessions
	for i, lists := range wiretest.Variants {
		var sess Session
		wiretest.Fill(&sess, lists)
		sess.SessionID = fmt.Sprintf("s-%d", i)
		if i == 1 {
			sess.ExpiresAt = nil
		}
		s.byID.Set(sess.SessionID, &record{Session: sess})
	}

	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	var got Sessions
	require.NoError(t, got.UnmarshalSnapshot(b))
	require.Equal(t, s.byID, got.byID)
	again, err := got.MarshalSnapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, again))

	frozen, err := s.FrozenCopy().MarshalSnapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, frozen))
}

func TestSnapshotRejects(t *testing.T) {
	t.Parallel()
	var sess Session
	wiretest.Fill(&sess, wiretest.Lists{EmptyAt: -1, NilAt: -1})
	var s Sessions
	s.byID.Set(sess.SessionID, &record{Session: sess})
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)

	bad := append([]byte(nil), b...)
	bad[0] = SnapshotVersion + 1
	require.ErrorIs(t, (&Sessions{}).UnmarshalSnapshot(bad), wire.ErrVersion)

	// A count larger than the input allocates nothing and fails.
	w := wire.NewWriter(0)
	w.Uvarint(SnapshotVersion)
	w.Uvarint(math.MaxUint64)
	require.ErrorIs(t, (&Sessions{}).UnmarshalSnapshot(w.Bytes()), wire.ErrCorrupt)

	var kept Sessions
	kept.byID.Set("kept", &record{Session: Session{SessionID: "kept"}})
	require.Error(t, kept.UnmarshalSnapshot(b[:len(b)-1]))
	require.Equal(t, 1, kept.Len(), "a failed restore leaves the state unchanged")
}
