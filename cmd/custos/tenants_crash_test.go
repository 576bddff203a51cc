package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// TestCrashDrillWithTwoTenants runs `custos serve` with tenants default and
// acme, drives evaluations for both at once (32 connections each), kills
// the process with SIGKILL at a random moment and restarts it: every
// decision either tenant got a 200 for is on that tenant's chain at the seq
// it was answered with, and each chain, and the system chain, verifies
// alone. Three cycles; CUSTOS_SEED replays a run.
func TestCrashDrillWithTwoTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("crash drill: skipped with -short")
	}
	t.Parallel()
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 0))
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	admin, super := adminKeyOf(t, srv), superadminKeyOf(t, srv)
	acmeAdmin := createTenant(t, srv, super, "acme")

	type tenant struct {
		chain, key, keyID string
		acks              []ack
	}
	tenants := []*tenant{{chain: "default"}, {chain: "acme"}}
	tenants[0].key, tenants[0].keyID = drillSetup(t, srv, admin)
	tenants[1].key, tenants[1].keyID = drillSetup(t, srv, acmeAdmin)

	for cycle := range 3 {
		if cycle > 0 {
			srv = startServer(t, dir)
		}
		killAfter := drillKillMin + time.Duration(rng.Int64N(int64(drillKillSpread)))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: drillConnections}, Timeout: 20 * time.Second}
		var killed atomic.Bool
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, tn := range tenants {
			for worker := range drillConnections / 2 {
				wg.Go(func() {
					for n := 0; ; n++ {
						session := fmt.Sprintf("%s-%d-%d-%d", tn.chain, cycle, worker, n)
						a, err := evaluateOnce(client, srv.addr, tn.key, session, "crm")
						if err != nil {
							if !killed.Load() {
								t.Errorf("%s cycle %d before the kill: %v", tn.chain, cycle, err)
							}
							return
						}
						a.cycle = cycle
						mu.Lock()
						tn.acks = append(tn.acks, a)
						mu.Unlock()
					}
				})
			}
		}
		time.Sleep(killAfter)
		killed.Store(true)
		require.NoError(t, srv.cmd.Process.Kill())
		wg.Wait()
		client.CloseIdleConnections()
		<-srv.logsDone
		var exit *exec.ExitError
		require.ErrorAs(t, srv.cmd.Wait(), &exit)
		status, ok := exit.Sys().(syscall.WaitStatus)
		require.True(t, ok && status.Signaled() && status.Signal() == syscall.SIGKILL, "logs: %s", srv.logs.String())

		re := startServer(t, dir)
		for _, tn := range tenants {
			key := admin
			if tn.chain == "acme" {
				key = acmeAdmin
			}
			code, body := re.do(t, http.MethodGet, "/v1/audit/verify", key, "")
			require.Equal(t, http.StatusOK, code, "%s", body)
			assert.Contains(t, string(body), `"valid":true`)
			assert.Contains(t, string(body), `"chain":"`+tn.chain+`"`)
		}
		re.stop(t)
		for _, tn := range tenants {
			require.NotEmpty(t, tn.acks, "%s acknowledged nothing before the kill", tn.chain)
			requireAcknowledgedOn(t, dir, tn.chain, tn.keyID, tn.acks, fmt.Sprintf("%s after cycle %d", tn.chain, cycle))
		}
		for _, chain := range []string{"default", "acme", "system"} {
			v := runCLI(t, nil, "verify", "--data", dir, "--chain", chain)
			require.Equal(t, 0, v.code, "cycle %d chain %s: %s%s", cycle, chain, v.stdout, v.stderr)
		}
		t.Logf("cycle %d: killed %v in; acknowledged default %d, acme %d", cycle, killAfter, len(tenants[0].acks), len(tenants[1].acks))
	}
}
