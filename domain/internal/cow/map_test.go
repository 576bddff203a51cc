package cow

import (
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

type strMap = Map[string, int, String]

func contents(m *strMap) map[string]int {
	out := map[string]int{}
	for k, v := range m.All() {
		out[k] = v
	}
	return out
}

func owns(m *strMap) int {
	n := 0
	for _, w := range m.owned {
		n += bits.OnesCount64(w)
	}
	return n
}

// TestMapMatchesBuiltinMap runs random sets, deletes and clones against a
// family of maps and a plain map model of each: every map reads like its
// model after every step, so no write leaks into a clone or back.
func TestMapMatchesBuiltinMap(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 1))
	maps_ := []*strMap{{}}
	models := []map[string]int{{}}
	for step := range 20_000 {
		i := rng.IntN(len(maps_))
		m, model := maps_[i], models[i]
		k := fmt.Sprintf("k%d", rng.IntN(3000))
		switch r := rng.IntN(100); {
		case r < 70:
			m.Set(k, step)
			model[k] = step
		case r < 95:
			m.Delete(k)
			delete(model, k)
		case len(maps_) < 12:
			c := m.Clone()
			maps_ = append(maps_, &c)
			models = append(models, maps.Clone(model))
		}
		v, ok := m.Get(k)
		w, wok := model[k]
		require.Equal(t, wok, ok, "step %d", step)
		require.Equal(t, w, v, "step %d", step)
	}
	for i, m := range maps_ {
		require.Equal(t, len(models[i]), m.Len(), "map %d", i)
		require.Equal(t, models[i], contents(m), "map %d", i)
	}
}

func TestCloneSharesShardsUntilWritten(t *testing.T) {
	t.Parallel()
	var m strMap
	for i := range 10_000 {
		m.Set(fmt.Sprint(i), i)
	}
	require.Equal(t, Shards, owns(&m), "10k keys reach every shard")
	c := m.Clone()
	require.Zero(t, owns(&m), "after a clone the original owns nothing")
	require.Zero(t, owns(&c))
	m.Set("0", -1)
	require.Equal(t, 1, owns(&m), "a write copies one shard")
	m.Set("0", -2)
	require.Equal(t, 1, owns(&m), "and only once")
	v, _ := c.Get("0")
	require.Equal(t, 0, v)
	c.Delete("1")
	require.Equal(t, 1, owns(&c))
	_, ok := m.Get("1")
	require.True(t, ok)
	require.Equal(t, 10_000, m.Len())
	require.Equal(t, 9_999, c.Len())

	var empty strMap
	e := empty.Clone()
	e.Set("a", 1)
	_, ok = empty.Get("a")
	require.False(t, ok, "a clone of the zero map is independent too")
}

// TestCloneReadWhileWriting reads clones on one goroutine while the
// original takes writes on another (run with -race).
func TestCloneReadWhileWriting(t *testing.T) {
	t.Parallel()
	var m strMap
	for i := range 5000 {
		m.Set(fmt.Sprint(i), i)
	}
	type job struct {
		clone *strMap
		want  map[string]int
	}
	jobs := make(chan job, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		for j := range jobs {
			if got := contents(j.clone); !maps.Equal(j.want, got) {
				t.Errorf("clone changed while it was read: %d entries, want %d", len(got), len(j.want))
			}
		}
	})
	for round := range 20 {
		c := m.Clone()
		jobs <- job{clone: &c, want: contents(&c)}
		for i := range 2000 {
			k := fmt.Sprint((round*2000 + i) % 7000)
			if i%5 == 0 {
				m.Delete(k)
			} else {
				m.Set(k, -i)
			}
		}
	}
	close(jobs)
	wg.Wait()
}

func TestStringHashSpreadsIdentifiers(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"key_%026d", "sess-%06d", "agent-%d", "%d"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var m strMap
			counts := make([]int, Shards)
			const n = 256 * 100
			for i := range n {
				counts[m.shard(fmt.Sprintf(format, i))]++
			}
			for i, c := range counts {
				require.Greater(t, c, 50, "shard %d of %q holds %d of %d keys", i, format, c, n)
				require.Less(t, c, 150, "shard %d of %q holds %d of %d keys", i, format, c, n)
			}
		})
	}
}

func BenchmarkStringHash(b *testing.B) {
	var h String
	for b.Loop() {
		_ = h.Hash("key_00000000000000000000001234")
	}
}
