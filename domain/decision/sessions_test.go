package decision

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

// Internal test: it follows records by pointer to check that Apply copies
// a record a frozen copy shares exactly once per freeze, and that the
// frozen copy's trails keep their length while the live ones grow.
func TestFrozenCopySharesRecordsUntilChanged(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 5, 6, 9, 0, 0, 0, time.UTC)
	var s Sessions
	seq := uint64(0)
	decide := func(sid, source string, start bool) {
		t.Helper()
		seq++
		m := Made{Request: policy.Request{SessionID: sid, SourceID: source}, Decision: Allow}
		if start {
			m.SessionStarted = &SessionStarted{SessionID: sid, StartedAt: t0}
		}
		require.NoError(t, s.Apply(fmt.Sprint(seq), t0, m))
	}
	recordOf := func(s *Sessions, id string) *record {
		r, ok := s.byID.Get(id)
		require.True(t, ok)
		return r
	}
	decide("a", "crm", true)
	decide("b", "crm", true)
	decide("a", "docs", false)

	before := recordOf(&s, "a")
	frozen := s.FrozenCopy()
	decide("a", "wiki", false)
	changed := recordOf(&s, "a")
	require.NotSame(t, before, changed, "the first change after a freeze copies the record")
	decide("a", "hr", false)
	require.Same(t, changed, recordOf(&s, "a"), "later changes in the same generation do not copy again")
	require.Same(t, recordOf(frozen, "b"), recordOf(&s, "b"), "unchanged records stay shared")

	got, _ := frozen.Get("a")
	require.Equal(t, "3", got.LastEventID)
	require.Equal(t, []string{"crm", "docs"}, got.SourcesAccessed)
	require.Equal(t, 2, got.Allowed)
	live, _ := s.Get("a")
	require.Equal(t, "1", live.FirstEventID)
	require.Equal(t, "5", live.LastEventID)
	require.Equal(t, []string{"crm", "docs", "wiki", "hr"}, live.SourcesAccessed)
	require.Equal(t, 4, live.Allowed)

	require.PanicsWithValue(t, "decision: Apply on a frozen copy of the sessions", func() {
		_ = frozen.Apply("x", t0, Made{Request: policy.Request{SessionID: "a"}})
	})
	c := frozen.Clone()
	require.NoError(t, c.Apply("x", t0, Made{Request: policy.Request{SessionID: "a"}}), "a deep clone of a frozen copy is live")
}
