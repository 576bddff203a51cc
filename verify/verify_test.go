package verify_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

const chain = eventstore.DefaultChain

// seedStore appends n records to a new store on disk and closes it.
func seedStore(t *testing.T, n int) (string, []eventstore.Record) {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
	require.NoError(t, err)
	var recs []eventstore.Record
	for i := range n {
		r, err := s.Append(context.Background(), chain, eventstore.Draft{
			Type: "test.appended", Actor: "system:test", Payload: []byte(fmt.Sprintf(`{"n":%d,"note":"record %d"}`, i+1, i+1)),
		})
		require.NoError(t, err)
		recs = append(recs, r...)
	}
	require.NoError(t, s.Close())
	return dir, recs
}

// tamper opens the folder with Pebble directly, as an attacker with disk
// access would, and lets fn rewrite it.
func tamper(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	fn(db)
	require.NoError(t, db.Close())
}

func stored(r eventstore.Record) []byte {
	return append(r.Encode(nil), r.Hash[:]...)
}

func get(t *testing.T, db *pebble.DB, seq uint64) []byte {
	t.Helper()
	v, closer, err := db.Get(eventstore.RecordKey(chain, seq))
	require.NoError(t, err)
	out := append([]byte(nil), v...)
	require.NoError(t, closer.Close())
	return out
}

func set(t *testing.T, db *pebble.DB, seq uint64, value []byte) {
	t.Helper()
	require.NoError(t, db.Set(eventstore.RecordKey(chain, seq), value, pebble.Sync))
}

func verifyDir(t *testing.T, dir string) verify.Report {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	report, err := verify.Store(context.Background(), s, chain)
	require.NoError(t, err)
	return report
}

func TestIntactChainIsValid(t *testing.T) {
	t.Parallel()
	dir, recs := seedStore(t, 10)
	r := verifyDir(t, dir)
	assert.True(t, r.Valid)
	assert.Equal(t, uint64(10), r.Total)
	assert.Equal(t, uint64(10), r.Chained)
	assert.Zero(t, r.Legacy)
	assert.Nil(t, r.BrokenAt)
	assert.Nil(t, r.Detail)
	assert.Equal(t, uint64(10), r.HeadSeq)
	assert.Equal(t, fmt.Sprintf("%x", recs[9].Hash), r.HeadHash)
}

func TestEmptyChainIsValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r := verifyDir(t, dir)
	assert.True(t, r.Valid)
	assert.Zero(t, r.Total)
}

// fieldOffsets gives, for each field of record r's stored form, an offset of
// one byte inside it.
func fieldOffsets(r eventstore.Record) map[string]int {
	o := map[string]int{}
	at := 0
	o["hash_version"] = at + 1
	at += 2
	o["chain"] = at + 4
	at += 4 + len(r.Chain)
	o["seq"] = at + 7
	at += 8
	o["id"] = at + 4 + 25
	at += 4 + len(r.ID)
	o["time"] = at + 7
	at += 8
	o["type"] = at + 4
	at += 4 + len(r.Type)
	o["actor"] = at + 4
	at += 4 + len(r.Actor)
	o["payload"] = at + 4 + 3
	at += 4 + len(r.Payload)
	o["prev_hash"] = at + 5
	at += eventstore.HashSize
	o["hash"] = at + 31
	return o
}

func TestOneChangedByteInAnyFieldIsCaught(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"hash_version": verify.KindUnknownVersion,
		"chain":        verify.KindChainMismatch,
		"seq":          verify.KindSeqMismatch,
		"id":           verify.KindHashMismatch,
		"time":         verify.KindHashMismatch,
		"type":         verify.KindHashMismatch,
		"actor":        verify.KindHashMismatch,
		"payload":      verify.KindHashMismatch,
		"prev_hash":    verify.KindHashMismatch,
		"hash":         verify.KindHashMismatch,
	}
	_, probe := seedStore(t, 1)
	for field, off := range fieldOffsets(probe[0]) {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			dir, recs := seedStore(t, 10)
			victim := recs[4]
			tamper(t, dir, func(db *pebble.DB) {
				v := get(t, db, victim.Seq)
				v[off] ^= 0x01
				set(t, db, victim.Seq, v)
			})
			r := verifyDir(t, dir)
			require.False(t, r.Valid)
			require.NotNil(t, r.Detail)
			assert.Equal(t, want[field], r.Detail.Kind)
			assert.Equal(t, victim.Seq, r.Detail.Seq)
			assert.Equal(t, uint64(4), r.Chained)
			assert.Equal(t, uint64(10), r.Total)
			require.NotNil(t, r.BrokenAt)
			wantID := victim.ID
			if field == "id" {
				b := []byte(victim.ID)
				b[25] ^= 0x01
				wantID = string(b)
			}
			assert.Equal(t, wantID, *r.BrokenAt)
		})
	}
}

func TestStructuralTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		tamper   func(t *testing.T, db *pebble.DB, recs []eventstore.Record)
		kind     string
		seq      uint64
		brokenAt func(recs []eventstore.Record) string
	}{
		{
			name: "deleted record",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				require.NoError(t, db.Delete(eventstore.RecordKey(chain, 5), pebble.Sync))
			},
			kind: verify.KindSeqGap, seq: 6,
			brokenAt: func(recs []eventstore.Record) string { return recs[5].ID },
		},
		{
			name: "inserted record shifts the rest",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				for i := len(recs) - 1; i >= 4; i-- {
					set(t, db, recs[i].Seq+1, stored(recs[i]))
				}
				forged := eventstore.Record{Chain: chain, Seq: 5, ID: "01JQ7Z6V0000000000000F0RGE", Time: recs[3].Time,
					Type: "key.created", Actor: "system:attacker", Payload: []byte(`{}`), PrevHash: recs[3].Hash, HashVersion: eventstore.HashVersion}
				forged.Hash = forged.ComputeHash()
				set(t, db, 5, stored(forged))
			},
			kind: verify.KindSeqMismatch, seq: 6,
			brokenAt: func(recs []eventstore.Record) string { return recs[4].ID },
		},
		{
			name: "replaced record with a valid hash of its own",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				forged := recs[4]
				forged.Payload = []byte(`{"n":5,"note":"rewritten"}`)
				forged.Hash = forged.ComputeHash()
				set(t, db, 5, stored(forged))
			},
			kind: verify.KindLinkBroken, seq: 6,
			brokenAt: func(recs []eventstore.Record) string { return recs[5].ID },
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				set(t, db, 5, stored(recs[5]))
				set(t, db, 6, stored(recs[4]))
			},
			kind: verify.KindSeqMismatch, seq: 5,
			brokenAt: func(recs []eventstore.Record) string { return recs[5].ID },
		},
		{
			name: "truncated tail",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				require.NoError(t, db.Delete(eventstore.RecordKey(chain, 10), pebble.Sync))
				require.NoError(t, db.Delete(eventstore.RecordKey(chain, 9), pebble.Sync))
			},
			kind: verify.KindHeadMismatch, seq: 10,
			brokenAt: func(recs []eventstore.Record) string { return recs[7].ID },
		},
		{
			name: "record appended behind the head's back",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				extra := eventstore.Record{Chain: chain, Seq: 11, ID: "01JQ7Z6V0000000000000EXTRA", Time: recs[9].Time,
					Type: "t", PrevHash: recs[9].Hash, HashVersion: eventstore.HashVersion}
				extra.Hash = extra.ComputeHash()
				set(t, db, 11, stored(extra))
			},
			kind: verify.KindHeadMismatch, seq: 10,
			brokenAt: func([]eventstore.Record) string { return "01JQ7Z6V0000000000000EXTRA" },
		},
		{
			name: "unparseable record",
			tamper: func(t *testing.T, db *pebble.DB, recs []eventstore.Record) {
				set(t, db, 3, []byte("garbage"))
			},
			kind: verify.KindMalformed, seq: 3,
			brokenAt: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, recs := seedStore(t, 10)
			tamper(t, dir, func(db *pebble.DB) { tc.tamper(t, db, recs) })
			r := verifyDir(t, dir)
			require.False(t, r.Valid)
			require.NotNil(t, r.Detail)
			assert.Equal(t, tc.kind, r.Detail.Kind)
			assert.Equal(t, tc.seq, r.Detail.Seq)
			if tc.brokenAt == nil {
				assert.Nil(t, r.BrokenAt)
				return
			}
			require.NotNil(t, r.BrokenAt)
			assert.Equal(t, tc.brokenAt(recs), *r.BrokenAt)
		})
	}
}
