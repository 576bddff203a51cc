package httpapi

import (
	"context"
	"slices"
	"sync"
	"time"
)

// fairGate admits the requests of tenants' keys to work, at most active at
// a time and, while another tenant is present (capOf), at most
// tenantActive of one tenant's (a tenant alone may use every slot), and
// gives each free slot to the tenants in turn: round robin over the tenants
// with a request waiting, each tenant's own requests in arrival order. A
// tenant that floods the server so queues behind its own requests, never in
// front of another tenant's, and as soon as another tenant shows up, the
// flood's new requests wait until it is back under tenantActive. Waiting requests hold no CPU. A tenant holds at most perTenant
// requests (working and waiting): beyond, enter refuses at once. Safe for
// concurrent use.
type fairGate struct {
	active, tenantActive, perTenant int
	now                             func() time.Time

	mu      sync.Mutex
	recent  map[string]time.Time // when each tenant last entered, within presence
	working int
	queues  map[string]*tenantQueue // tenants holding a request
	ring    []*tenantQueue          // tenants with a request waiting (inRing), in turn order
}

type tenantQueue struct {
	id            string
	held, working int // requests held (working + waiting), working
	waiting       []chan struct{}
	inRing        bool
}

func newFairGate(active, tenantActive, perTenant int) *fairGate {
	return &fairGate{active: active, tenantActive: min(tenantActive, active), perTenant: perTenant, now: time.Now,
		queues: make(map[string]*tenantQueue), recent: make(map[string]time.Time)}
}

// errTenantFull means the tenant holds perTenant requests already.
var errTenantFull = errorString("httpapi: the tenant holds its share of requests")

type errorString string

func (e errorString) Error() string { return string(e) }

// enter waits for a slot of work for a request of tenant, and returns nil
// once it has one: the caller calls leave(tenant) once. It returns
// errTenantFull at once when the tenant holds perTenant requests, and
// ctx's error when ctx ends first (the request holds nothing then).
func (g *fairGate) enter(ctx context.Context, tenant string) error {
	g.mu.Lock()
	q := g.queues[tenant]
	if q == nil {
		q = &tenantQueue{id: tenant}
		g.queues[tenant] = q
	}
	g.recent[tenant] = g.now()
	if q.held >= g.perTenant {
		g.mu.Unlock()
		return errTenantFull
	}
	q.held++
	if len(g.ring) == 0 && g.working < g.active && q.working < g.capOf(q) {
		q.working++ // nobody waits: no turn to take
		g.working++
		g.mu.Unlock()
		return nil
	}
	grant := make(chan struct{})
	q.waiting = append(q.waiting, grant)
	if !q.inRing {
		q.inRing = true
		g.ring = append(g.ring, q)
	}
	g.dispatch()
	g.mu.Unlock()

	select {
	case <-grant:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-grant: // granted meanwhile: give the slot back
		g.finish(tenant, q)
	default:
		q.waiting = slices.DeleteFunc(q.waiting, func(c chan struct{}) bool { return c == grant })
		if len(q.waiting) == 0 && q.inRing {
			q.inRing = false
			g.ring = slices.DeleteFunc(g.ring, func(r *tenantQueue) bool { return r == q })
		}
		g.forget(tenant, q)
	}
	return ctx.Err()
}

// leave frees the slot a successful enter of tenant took.
func (g *fairGate) leave(tenant string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.finish(tenant, g.queues[tenant])
}

// finish ends one working request of q. The caller holds mu.
func (g *fairGate) finish(tenant string, q *tenantQueue) {
	q.working--
	g.working--
	g.forget(tenant, q)
	g.dispatch()
}

// presence is how long a tenant counts as present after its last request:
// a tenant that sends steadily holds a request only now and then, and its
// share must not vanish between two of them.
const presence = time.Second

// capOf is how many requests q's tenant may have working: tenantActive
// while another tenant is present (holds a request, or sent one within
// presence), every slot while it is alone, so one tenant on its own loses
// nothing to the cap. The caller holds mu.
func (g *fairGate) capOf(q *tenantQueue) int {
	if len(g.queues) > 1 {
		return g.tenantActive
	}
	now := g.now()
	for id, at := range g.recent {
		switch {
		case now.Sub(at) >= presence:
			delete(g.recent, id)
		case id != q.id:
			return g.tenantActive
		}
	}
	return g.active
}

// forget drops one held request of q, and q once it holds none. The
// caller holds mu.
func (g *fairGate) forget(tenant string, q *tenantQueue) {
	q.held--
	if q.held == 0 {
		delete(g.queues, tenant)
	}
}

// dispatch grants free slots to waiting requests, the tenants in turn,
// skipping tenants at tenantActive. The caller holds mu.
func (g *fairGate) dispatch() {
	for g.working < g.active {
		j := slices.IndexFunc(g.ring, func(q *tenantQueue) bool { return q.working < g.capOf(q) })
		if j < 0 {
			return
		}
		q := g.ring[j]
		g.ring = slices.Delete(g.ring, j, j+1)
		grant := q.waiting[0]
		q.waiting = q.waiting[1:]
		q.working++
		g.working++
		if len(q.waiting) > 0 {
			g.ring = append(g.ring, q) // its next turn comes after the others'
		} else {
			q.inRing = false
		}
		close(grant)
	}
}
