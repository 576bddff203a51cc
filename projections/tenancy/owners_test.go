package tenancy

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Concurrent stores from several chains are each routed to their chain,
// two chains' hashes sharing their first 8 bytes are marked shared (and
// only those), and an unknown hash has no chain.
func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	var o ownerIndex
	hash := func(chain string, i int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "%s/%d", chain, i)) }
	chains := []string{"default", "acme", "acme2", "_system"}
	var wg sync.WaitGroup
	for _, c := range chains {
		wg.Go(func() {
			n := o.Number(c)
			for i := range 2000 {
				require.False(t, o.Store(hash(c, i), n))
			}
		})
	}
	wg.Wait()
	for _, c := range chains {
		for i := range 2000 {
			got, shared, ok := o.Load(hash(c, i))
			require.True(t, ok)
			require.False(t, shared)
			require.Equal(t, c, got)
		}
	}
	require.False(t, o.Store(hash("acme", 7), o.Number("acme")), "the same chain again is no clash")

	clashing := hash("acme", 7)
	clashing[31] ^= 1 // same first 8 bytes, another key
	require.True(t, o.Store(clashing, o.Number("default")))
	for _, h := range [][32]byte{clashing, hash("acme", 7)} {
		_, shared, ok := o.Load(h)
		require.True(t, ok)
		require.True(t, shared)
	}
	got, shared, ok := o.Load(hash("acme", 8))
	require.True(t, ok)
	require.False(t, shared)
	require.Equal(t, "acme", got)

	_, _, ok = o.Load(sha256.Sum256([]byte("nobody")))
	require.False(t, ok)
}
