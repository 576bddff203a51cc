package httpapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// waiter enters g for tenant in a goroutine and reports on granted when it
// got its slot.
func waiter(t *testing.T, g *fairGate, tenant, name string, granted chan<- string) {
	t.Helper()
	go func() {
		if err := g.enter(context.Background(), tenant); err == nil {
			granted <- name
		}
	}()
}

// settle waits until n requests wait in g.
func settle(t *testing.T, g *fairGate, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		w := 0
		for _, q := range g.queues {
			w += len(q.waiting)
		}
		return w == n
	}, 5*time.Second, time.Millisecond)
}

func TestFairGateTakesTenantsInTurn(t *testing.T) {
	t.Parallel()
	g := newFairGate(1, 1, 100)
	ctx := context.Background()
	require.NoError(t, g.enter(ctx, "a"))
	granted := make(chan string, 8)
	for i := range 3 {
		waiter(t, g, "a", fmt.Sprintf("a%d", i+1), granted)
		settle(t, g, i+1)
	}
	waiter(t, g, "b", "b1", granted)
	settle(t, g, 4)
	var order []string
	holder := "a" // the one slot's holder: each leave hands it on
	for range 4 {
		g.leave(holder)
		next := <-granted
		order = append(order, next)
		holder = next[:1]
	}
	require.Equal(t, []string{"a1", "b1", "a2", "a3"}, order, "b's request waits for one slot, not for a's queue")
}

func TestFairGateCapsAFloodOnceAnotherTenantShowsUp(t *testing.T) {
	t.Parallel()
	g := newFairGate(4, 2, 100)
	ctx := context.Background()
	for range 4 { // alone, a tenant may take every slot
		require.NoError(t, g.enter(ctx, "flood"))
	}
	granted := make(chan string, 2)
	waiter(t, g, "other", "other", granted)
	settle(t, g, 1)
	waiter(t, g, "flood", "flood-5", granted)
	settle(t, g, 2)
	g.leave("flood") // 3 working: the slot goes to the other tenant
	require.Equal(t, "other", <-granted)
	g.leave("flood") // 2 working, its share while another tenant holds one
	select {
	case n := <-granted:
		t.Fatalf("%s was granted past its tenant's share", n)
	case <-time.After(20 * time.Millisecond):
	}
	g.leave("flood") // 1 working: below its share
	require.Equal(t, "flood-5", <-granted)
}

func TestFairGateRefusesBeyondATenantsShare(t *testing.T) {
	t.Parallel()
	g := newFairGate(1, 1, 2)
	ctx := context.Background()
	require.NoError(t, g.enter(ctx, "a"))
	granted := make(chan string, 1)
	waiter(t, g, "a", "a2", granted)
	settle(t, g, 1)
	require.ErrorIs(t, g.enter(ctx, "a"), errTenantFull)
	// Another tenant still waits its turn, not refused.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, g.enter(short, "b"), context.DeadlineExceeded)
	g.leave("a")
	require.Equal(t, "a2", <-granted)
	g.leave("a")
	require.NoError(t, g.enter(ctx, "b"))
	g.leave("b")
	require.Empty(t, g.queues)
	require.Zero(t, g.working)
}

// TestFairGateUnderRandomLoad enters, leaves and gives up at random from
// many goroutines and checks that no more than active requests ever work
// at once, that each tenant got work, and that the gate is empty at the
// end. Replay with CUSTOS_SEED.
func TestFairGateUnderRandomLoad(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	const active, tenantActive = 5, 3
	g := newFairGate(active, tenantActive, 1000)
	var working atomic.Int64
	var perTenant, served [3]atomic.Int64
	var wg sync.WaitGroup
	for w := range 24 {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for range 200 {
				tenant := rng.IntN(3)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(300))*time.Microsecond)
				err := g.enter(ctx, fmt.Sprint(tenant))
				cancel()
				if err != nil {
					continue
				}
				if n := working.Add(1); n > active {
					t.Errorf("%d requests working, at most %d allowed", n, active)
				}
				perTenant[tenant].Add(1)
				served[tenant].Add(1)
				time.Sleep(time.Duration(rng.IntN(100)) * time.Microsecond)
				perTenant[tenant].Add(-1)
				working.Add(-1)
				g.leave(fmt.Sprint(tenant))
			}
		})
	}
	wg.Wait()
	for i := range served {
		require.Positive(t, served[i].Load(), "tenant %d was never served", i)
	}
	require.Zero(t, g.working)
	require.Empty(t, g.queues)
	require.Empty(t, g.ring)
}
