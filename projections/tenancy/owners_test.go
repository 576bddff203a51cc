package tenancy

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Concurrent stores from several chains are each found under their own
// hash, LoadOrStore keeps the first owner, and an unknown hash has none.
func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	var o ownerIndex
	hash := func(chain string, i int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "%s/%d", chain, i)) }
	chains := []string{"default", "acme", "acme2", "_system"}
	var wg sync.WaitGroup
	for _, c := range chains {
		wg.Go(func() {
			for i := range 2000 {
				o.Store(hash(c, i), c)
			}
		})
	}
	wg.Wait()
	for _, c := range chains {
		for i := range 2000 {
			got, ok := o.Load(hash(c, i))
			require.True(t, ok)
			require.Equal(t, c, got)
		}
	}
	prev, loaded := o.LoadOrStore(hash("acme", 7), "default")
	require.True(t, loaded)
	require.Equal(t, "acme", prev)
	got, loaded := o.LoadOrStore(hash("new", 1), "new")
	require.False(t, loaded)
	require.Equal(t, "new", got)
	_, ok := o.Load(sha256.Sum256([]byte("nobody")))
	require.False(t, ok)
}
