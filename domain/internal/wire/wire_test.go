package wire_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// The Size functions give exactly what the Writer writes, at the edges of
// each varint length and for random values.
func TestSizesMatchWrites(t *testing.T) {
	t.Parallel()
	us := []uint64{0, 1, 127, 128, 16383, 16384, math.MaxUint32, math.MaxUint64}
	vs := []int64{0, 1, -1, 63, -64, 64, -65, math.MaxInt64, math.MinInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		us = append(us, rng.Uint64()>>rng.IntN(64))
		vs = append(vs, int64(rng.Uint64())>>rng.IntN(64))
	}
	for _, u := range us {
		w := wire.NewWriter(0)
		w.Uvarint(u)
		require.Len(t, w.Bytes(), wire.UvarintSize(u), "%d", u)
	}
	for _, v := range vs {
		w := wire.NewWriter(0)
		w.Varint(v)
		require.Len(t, w.Bytes(), wire.VarintSize(v), "%d", v)
	}
	for _, s := range []string{"", "a", string(make([]byte, 127)), string(make([]byte, 128)), string(make([]byte, 20000))} {
		w := wire.NewWriter(0)
		w.String(s)
		require.Len(t, w.Bytes(), wire.StringSize(s), "len %d", len(s))
	}
	for _, tm := range []time.Time{{}, time.Unix(0, 0), time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.UTC), time.Date(-3000, 1, 1, 0, 0, 0, 1, time.UTC)} {
		w := wire.NewWriter(0)
		w.Time(tm)
		require.Len(t, w.Bytes(), wire.TimeSize(tm), "%v", tm)
	}
}
