package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// printedKeys returns the first admin key and the superadmin key that the
// nodes printed on stdout, each exactly once over all nodes.
func printedKeys(t *testing.T, nodes []*node) (admin, superadmin string) {
	t.Helper()
	blocks := regexp.MustCompile(`custos: (first admin key|deployment superadmin key) =+\n(cst_[0-9A-Za-z]{49})`)
	for _, n := range nodes {
		for _, m := range blocks.FindAllStringSubmatch(n.stdout.String(), -1) {
			p := &admin
			if m[1] == "deployment superadmin key" {
				p = &superadmin
			}
			require.Empty(t, *p, "one node prints the %s", m[1])
			*p = m[2]
		}
	}
	require.NotEmpty(t, admin, "a node prints the first admin key")
	require.NotEmpty(t, superadmin, "a node prints the superadmin key")
	return admin, superadmin
}

// eventually asks n until the answer has code, at most 20 s (a follower
// learns of a tenant, a key or a suspension as it applies the stream).
func eventually(t *testing.T, n *node, method, path, key, body string, code int) []byte {
	t.Helper()
	var got int
	var b []byte
	require.Eventually(t, func() bool {
		got, b = n.do(t, method, path, key, body)
		return got == code
	}, 20*time.Second, 50*time.Millisecond, "%s %s on node %s: want %d", method, path, n.name, code)
	return b
}

// TestClusterServesTenants runs tenants on a three-node cluster: a
// superadmin creates a tenant through a follower, its keys work on every
// node and see nothing of tenant default, its suspension reaches every
// node, and after the sequencer is killed another node sequences every
// chain, tenant acme's included, and both tenants' chains verify.
func TestClusterServesTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster: skipped with -short")
	}
	clients, monitors := natsCluster(t)
	base := t.TempDir()
	nodes, _ := startNodes(t, base, func(i int) []string {
		a := []string{"--nats", strings.Join(clients, ","), "--nats-monitor", strings.Join(monitors, ","), "--lease-ttl", "2s"}
		if i > 0 {
			a = append(a, "--signing-key", sharedKey(base))
		}
		return a
	})
	admin, superadmin := printedKeys(t, nodes)
	for _, n := range nodes {
		if strings.Contains(n.stdout.String(), superadmin) {
			require.Contains(t, n.stdout.String(), "Lost it? a cluster has no offline reset",
				"a cluster node's folder must not be reset offline")
		}
	}
	seqName := sequencerOf(t, nodes[0], admin)
	var sequencer *node
	var followers []*node
	for _, n := range nodes {
		if n.name == seqName {
			sequencer = n
		} else {
			followers = append(followers, n)
		}
	}
	require.NotNil(t, sequencer)
	require.Len(t, followers, 2)

	// A superadmin creates tenant acme through a follower.
	code, body := followers[0].do(t, http.MethodPost, "/v1/tenants", superadmin, `{"tenant_id":"acme"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct {
		AdminKey struct {
			Key string `json:"key"`
		} `json:"admin_key"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	acme := created.AdminKey.Key
	require.NotEmpty(t, acme)
	// Every node learns of it and takes its key, and acme sees its own
	// chain alone.
	for _, n := range nodes {
		b := eventually(t, n, http.MethodGet, "/v1/keys", acme, "", http.StatusOK)
		require.NotContains(t, string(b), "bootstrap-admin", "node %s: acme's keys only", n.name)
	}
	evalKey, acmeEvalID := drillSetup(t, followers[1].server, acme)
	for _, n := range nodes {
		eventually(t, n, http.MethodGet, "/v1/agents/drill-agent", acme, "", http.StatusOK)
		code, _ := n.do(t, http.MethodGet, "/v1/agents/drill-agent", admin, "")
		require.Equal(t, http.StatusNotFound, code, "node %s: tenant default does not see acme's agent", n.name)
		code, body := n.do(t, http.MethodGet, "/v1/cluster", acme, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NotContains(t, string(body), `"default"`, "node %s: acme sees its own chain only", n.name)
		require.NotContains(t, string(body), `"system"`)
	}
	for i, n := range nodes {
		_, err := evaluateOnce(http.DefaultClient, n.addr, evalKey, fmt.Sprintf("acme-%d", i), "crm")
		require.NoError(t, err, "evaluate through node %s", n.name)
	}

	// Suspension, ordered through a follower, reaches every node.
	code, body = followers[1].do(t, http.MethodPost, "/v1/tenants/acme/suspend", superadmin, `{"reason":"unpaid"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	for _, n := range nodes {
		b := eventually(t, n, http.MethodGet, "/v1/keys", acme, "", http.StatusForbidden)
		require.Contains(t, string(b), `"detail"`)
	}
	_, err := evaluateOnce(http.DefaultClient, followers[0].addr, evalKey, "acme-suspended", "crm")
	require.ErrorIs(t, err, errNotAcknowledged, "a suspended tenant's decisions are refused")
	code, body = followers[0].do(t, http.MethodPost, "/v1/tenants/acme/resume", superadmin, "")
	require.Equal(t, http.StatusOK, code, "%s", body)

	// Both tenants evaluate through every node while the sequencer is
	// killed: another node sequences every chain, and no acknowledged
	// decision of either tenant is lost.
	defaultEval, defaultEvalID := drillSetup(t, followers[0].server, admin)
	var dead sync.Map
	stop := make(chan struct{})
	var acmeAcks, defaultAcks []timedAck
	var loads sync.WaitGroup
	loads.Go(func() { acmeAcks = clusterLoad(t, nodes, evalKey, &dead, stop) })
	loads.Go(func() { defaultAcks = clusterLoad(t, nodes, defaultEval, &dead, stop) })
	time.Sleep(time.Second)
	dead.Store(sequencer.name, true)
	killed := time.Now()
	sequencer.kill9(t)
	var next string
	require.Eventually(t, func() bool {
		next = sequencerOf(t, followers[0], admin)
		return next != "" && next != seqName
	}, 30*time.Second, 100*time.Millisecond, "another node sequences chain default")
	time.Sleep(2 * time.Second)
	close(stop)
	loads.Wait()
	t.Logf("acknowledged: acme %d, default %d; acme resumed %v after the kill", len(acmeAcks), len(defaultAcks),
		resumedAfter(t, acmeAcks, killed).Round(time.Millisecond))
	resumedAfter(t, defaultAcks, killed)
	require.Eventually(t, func() bool {
		code, body = followers[1].do(t, http.MethodGet, "/v1/cluster", acme, "")
		return code == http.StatusOK && strings.Contains(string(body), `"sequencer":"`+next+`"`)
	}, 10*time.Second, 50*time.Millisecond, "acme's chain moved with the others: %s", body)
	for _, n := range followers {
		for _, key := range []string{admin, acme} {
			b := eventually(t, n, http.MethodGet, "/v1/audit/verify", key, "", http.StatusOK)
			require.Contains(t, string(b), `"valid":true`, "node %s", n.name)
		}
		b := eventually(t, n, http.MethodGet, "/v1/tenants/acme/audit/verify", superadmin, "", http.StatusOK)
		require.Contains(t, string(b), `"valid":true`)
	}

	// A lost superadmin key: a node's folder refuses an offline reset
	// (it would fork from the stream); with every node stopped, a reset
	// through the cluster mints a new key that the nodes take.
	for _, n := range followers {
		n.stop(t)
	}
	for _, n := range followers {
		requireAcknowledgedOn(t, n.dir, "acme", acmeEvalID, acksOf(acmeAcks), "node "+n.name+", tenant acme")
		requireAcknowledgedOn(t, n.dir, "default", defaultEvalID, acksOf(defaultAcks), "node "+n.name+", tenant default")
	}
	offline := runCLI(t, nil, "admin-key", "reset", "--data", followers[0].dir, "--signing-key", sharedKey(base))
	require.Equal(t, 2, offline.code, "%s%s", offline.stdout, offline.stderr)
	require.Contains(t, offline.stderr, "cluster node's copy")
	offline = runCLI(t, nil, "superadmin-key", "reset", "--data", followers[0].dir, "--signing-key", sharedKey(base))
	require.Equal(t, 2, offline.code, "%s%s", offline.stdout, offline.stderr)
	require.Contains(t, offline.stderr, "cluster node's copy")
	r := runCLI(t, nil, "superadmin-key", "reset", "--data", filepath.Join(base, "reset"), "--node", "reset", "--signing-key", sharedKey(base),
		"--nats", strings.Join(clients, ","), "--nats-monitor", strings.Join(monitors, ","), "--lease-ttl", "2s")
	require.Equal(t, 0, r.code, "%s%s", r.stdout, r.stderr)
	reset := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^cst_[0-9A-Za-z]{49}$`, reset)
	back := followers[0].restart(t)
	b := eventually(t, back, http.MethodGet, "/v1/tenants", reset, "", http.StatusOK)
	require.Contains(t, string(b), `"tenant_id":"acme"`)
	b = eventually(t, back, http.MethodGet, "/v1/tenants", superadmin, "", http.StatusOK)
	require.Contains(t, string(b), `"tenant_id":"acme"`, "the old superadmin key stays as it was")
}

// acksOf drops the timing of acks.
func acksOf(acks []timedAck) []ack {
	out := make([]ack, len(acks))
	for i, a := range acks {
		out[i] = a.ack
	}
	return out
}

// TestClusterFollowerRestartsBehindItsWitness: with a witness, a follower
// stopped while the others go on (the witness cosigning the larger tree
// through the sequencer) starts again: it catches up with the stream
// before it checks its copy against the witness, rather than refusing a
// copy that only looks truncated.
func TestClusterFollowerRestartsBehindItsWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster: skipped with -short")
	}
	base := t.TempDir()
	// The signing key exists before the witness, which follows its
	// verifier key; the first node finds it at its default path.
	vkeyFile := filepath.Join(base, "log.vkey")
	requireCode(t, 0, runCLI(t, nil, "init", "--data", filepath.Join(base, "keygen"), "--vkey-out", vkeyFile))
	key, err := os.ReadFile(filepath.Join(base, "keygen") + ".signing-key")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(sharedKey(base), key, 0o600))
	w := startWitnessProc(t, base, "w1", vkeyFile)

	clients, monitors := natsCluster(t)
	nodes, _ := startNodes(t, base, func(i int) []string {
		a := []string{"--nats", strings.Join(clients, ","), "--nats-monitor", strings.Join(monitors, ","), "--lease-ttl", "2s",
			"--witness", w.url + "=" + w.vkey, "--witness-interval", "100ms"}
		if i > 0 {
			a = append(a, "--signing-key", sharedKey(base))
		}
		return a
	})
	admin, _ := printedKeys(t, nodes)
	seqName := sequencerOf(t, nodes[0], admin)
	var sequencer, stopped *node
	for _, n := range nodes {
		switch {
		case n.name == seqName:
			sequencer = n
		case stopped == nil:
			stopped = n
		}
	}
	require.NotNil(t, sequencer)
	cosignedOf(t, stopped.server, admin, headOf(t, sequencer.server, admin))
	evalKey, _ := drillSetup(t, sequencer.server, admin)
	stopped.stop(t)
	// Enough decisions meanwhile that catching up takes the restarted
	// node a while.
	var dead sync.Map
	stop := make(chan struct{})
	loaded := make(chan []timedAck)
	go func() { loaded <- clusterLoad(t, []*node{sequencer}, evalKey, &dead, stop) }()
	time.Sleep(4 * time.Second)
	close(stop)
	t.Logf("%d decisions while the follower was stopped", len(<-loaded))
	head := headOf(t, sequencer.server, admin)
	cosignedOf(t, sequencer.server, admin, head)

	back := stopped.restart(t)
	b := eventually(t, back, http.MethodGet, "/v1/audit/verify", admin, "", http.StatusOK)
	require.Contains(t, string(b), `"valid":true`)
	require.GreaterOrEqual(t, headOf(t, back.server, admin), head, "the restarted follower caught up")
	cosignedOf(t, back.server, admin, head)
}
