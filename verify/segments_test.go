package verify_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify"
)

// segmentTamper is one way a folder is edited behind the store's back.
type segmentTamper struct {
	name string
	do   func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand)
}

var segmentTampers = []segmentTamper{
	{"intact", func(*testing.T, *pebble.DB, []eventstore.Record, *rand.Rand) {}},
	{"flip a byte", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		seq := 1 + rng.Uint64N(uint64(len(recs)))
		v := get(t, db, seq)
		v[rng.IntN(len(v))] ^= byte(1 + rng.IntN(255))
		set(t, db, seq, v)
	}},
	{"delete a record", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		require.NoError(t, db.Delete(eventstore.RecordKey(chain, 1+rng.Uint64N(uint64(len(recs)))), pebble.Sync))
	}},
	{"copy a record over another", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		n := uint64(len(recs))
		set(t, db, 1+rng.Uint64N(n), get(t, db, 1+rng.Uint64N(n)))
	}},
	{"swap two records", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		n := uint64(len(recs))
		a, b := 1+rng.Uint64N(n), 1+rng.Uint64N(n)
		va, vb := get(t, db, a), get(t, db, b)
		set(t, db, a, vb)
		set(t, db, b, va)
	}},
	{"truncate the tail", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		for seq := uint64(len(recs)) - rng.Uint64N(uint64(len(recs))/4); seq <= uint64(len(recs)); seq++ {
			require.NoError(t, db.Delete(eventstore.RecordKey(chain, seq), pebble.Sync))
		}
	}},
	{"rewrite from a record on", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		rewriteFrom(t, db, recs, 2+rng.IntN(len(recs)-1))
	}},
	{"time going back", func(t *testing.T, db *pebble.DB, recs []eventstore.Record, rng *rand.Rand) {
		i := 1 + rng.IntN(len(recs)-1)
		prev := recs[i-1].Hash
		for j := i; j < len(recs); j++ {
			r := recs[j]
			if j == i {
				r.Time = recs[i-1].Time.Add(-1)
			}
			r.PrevHash = prev
			r.Hash = r.ComputeHash()
			set(t, db, r.Seq, stored(r))
			prev = r.Hash
		}
		setHead(t, db, uint64(len(recs)), prev)
	}},
}

// TestSegmentedCheckMatchesOnePass tampers with copies of one signed
// chain in random ways and checks that verifying it in segments at once,
// cut in every way into 2 to 7, gives exactly the report of one pass from
// genesis (first problem, counts, checkpoint result), with and without a
// checkpoint.
// Replay a failure with the seed it logs (eventstoretest.SeedEnv).
func TestSegmentedCheckMatchesOnePass(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	f := newSignedFixture(t, nil, "segments")
	for round := range 40 {
		tc := segmentTampers[round%len(segmentTampers)]
		t.Run(fmt.Sprintf("%d %s", round, tc.name), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "copy")
			require.NoError(t, os.CopyFS(dir, os.DirFS(f.dir)))
			tamper(t, dir, func(db *pebble.DB) { tc.do(t, db, f.recs, rng) })
			s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
			require.NoError(t, err)
			defer s.Close()
			for _, opts := range [][]verify.Option{nil, {verify.WithCheckpoint(f.cp)}} {
				one, err := verify.Store(context.Background(), s, chain, opts...)
				require.NoError(t, err)
				if tc.name == "intact" {
					require.True(t, one.Valid)
				}
				// Every way of cutting 30 records into 2 to 7 segments.
				for _, size := range []uint64{1, 2, 3, 5, 8} {
					for most := 2; most <= 7; most++ {
						seg, err := verify.Store(context.Background(), s, chain, append(opts, verify.Segmented(size, most))...)
						require.NoError(t, err)
						require.Equal(t, stable(one), stable(seg), "segments of at least %d, at most %d", size, most)
					}
				}
			}
		})
	}
}
