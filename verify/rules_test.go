package verify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

// chainOf builds a correctly hashed and linked chain of records with the
// given ids and times, as someone who rewrites a chain and recomputes
// every hash would.
func chainOf(ids []string, times []time.Time) []eventstore.Record {
	out := make([]eventstore.Record, len(ids))
	prev := eventstore.GenesisPrevHash()
	for i := range ids {
		r := eventstore.Record{Chain: chain, Seq: uint64(i + 1), ID: ids[i], Time: times[i], Type: "t", Actor: "system:test",
			Payload: []byte(`{}`), PrevHash: prev, HashVersion: eventstore.HashVersion}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out[i] = r
	}
	return out
}

func checkAll(recs []eventstore.Record) verify.Report {
	c := verify.NewChecker(chain, 1, eventstore.GenesisPrevHash())
	for _, r := range recs {
		c.Add(r.Seq, stored(r))
	}
	last := recs[len(recs)-1]
	return c.Finish(eventstore.Head{Seq: last.Seq, Hash: last.Hash}, true)
}

// TestChainRulesBeyondHashes checks the rules of docs/hash-spec.md that
// hold even when every hash was recomputed: ids are ULIDs, and time never
// decreases (equal times are allowed).
func TestChainRulesBeyondHashes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	ids := []string{"01KBBN0N00000000000000000A", "01KBBN0N00000000000000000B", "01KBBN0N00000000000000000C", "01KBBN0N00000000000000000D"}
	cases := []struct {
		name  string
		ids   []string
		times []time.Time
		kind  string // "" for valid
		seq   uint64
	}{
		{"intact, equal times allowed", ids, []time.Time{t0, t0, t0.Add(time.Nanosecond), t0.Add(time.Second)}, "", 0},
		{"time goes back one nanosecond", ids, []time.Time{t0, t0.Add(time.Second), t0.Add(time.Second - 1), t0.Add(2 * time.Second)}, verify.KindTimeDecreased, 3},
		{"lower-case id", []string{ids[0], strings.ToLower(ids[1]), ids[2], ids[3]}, []time.Time{t0, t0, t0, t0}, verify.KindBadID, 2},
		{"id of 25 characters", []string{ids[0], ids[1], ids[2][:25], ids[3]}, []time.Time{t0, t0, t0, t0}, verify.KindBadID, 3},
		{"id with a letter outside Crockford base32", []string{ids[0], ids[1], ids[2], "01KBBN0N0000000000000000OU"}, []time.Time{t0, t0, t0, t0}, verify.KindBadID, 4},
		{"id past 128 bits", []string{"81KBBN0N00000000000000000A", ids[1], ids[2], ids[3]}, []time.Time{t0, t0, t0, t0}, verify.KindBadID, 1},
		{"empty id", []string{ids[0], "", ids[2], ids[3]}, []time.Time{t0, t0, t0, t0}, verify.KindBadID, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := checkAll(chainOf(tc.ids, tc.times))
			assert.Equal(t, chain, r.Chain)
			if tc.kind == "" {
				require.True(t, r.Valid, "%+v", r.Detail)
				assert.Nil(t, r.BrokenAtSeq)
				return
			}
			require.False(t, r.Valid)
			assert.Equal(t, tc.kind, r.Detail.Kind)
			assert.Equal(t, tc.seq, r.Detail.Seq)
			assert.Equal(t, tc.seq-1, r.Chained)
			if tc.ids[tc.seq-1] != "" {
				require.NotNil(t, r.BrokenAtSeq)
				assert.Equal(t, tc.seq, *r.BrokenAtSeq)
				assert.Equal(t, tc.ids[tc.seq-1], *r.BrokenAt)
			}
		})
	}
}

// TestBrokenAtSeqTellsCopiesApart duplicates a line of an export: both
// copies have one id, and broken_at_seq names the position of the second.
func TestBrokenAtSeqTellsCopiesApart(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 6)
	lines := f.export(t, 0, 0)
	dup := append(append(append([]string(nil), lines[:3]...), lines[2]), lines[3:]...)
	r := verifyExport(t, joinLines(dup))
	require.False(t, r.Valid)
	assert.Equal(t, verify.KindSeqMismatch, r.Detail.Kind)
	require.NotNil(t, r.BrokenAt)
	assert.Equal(t, f.recs[2].ID, *r.BrokenAt)
	require.NotNil(t, r.BrokenAtSeq)
	assert.Equal(t, uint64(4), *r.BrokenAtSeq)
}

// TestExportExpectChain checks that an export names its chain in the
// report, and that ExpectChain rejects an export of another chain.
func TestExportExpectChain(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 3)
	file := joinLines(f.export(t, 0, 0))
	r := verifyExport(t, file)
	require.True(t, r.Valid)
	assert.Equal(t, chain, r.Chain)

	r, err := verify.Export(t.Context(), strings.NewReader(file), verify.ExpectChain(chain))
	require.NoError(t, err)
	require.True(t, r.Valid)

	r, err = verify.Export(t.Context(), strings.NewReader(file), verify.ExpectChain("tenant-b"))
	require.NoError(t, err)
	require.False(t, r.Valid)
	assert.Equal(t, "tenant-b", r.Chain)
	assert.Equal(t, verify.KindChainMismatch, r.Detail.Kind)
	assert.Equal(t, uint64(1), r.Detail.Seq)
}
