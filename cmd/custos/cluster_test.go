package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/eventstore/jetstream"
)

// resumeBound is how soon after the death of the sequencing node a
// surviving node must answer a decision again.
const resumeBound = 5 * time.Second

// streamElection is what JetStream itself may take to elect new stream
// leaders after a server died (4-9 s, nats-server's own figure).
const streamElection = 10 * time.Second

// natsCluster starts three in-process nats-servers routed to each other,
// with JetStream (sync always) and monitoring, and returns their client
// URLs and monitoring endpoints.
func natsCluster(t *testing.T) (clients, monitors []string) {
	t.Helper()
	ports := freePortList(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	servers := make([]*natsserver.Server, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() {
			servers[i], errs[i] = jetstream.StartEmbedded(jetstream.EmbeddedOptions{
				Name: fmt.Sprintf("nats%d", i), Dir: t.TempDir(), Cluster: "custos-test",
				ClusterPort: ports[i], Routes: routes, MonitorPort: -1,
			})
		})
	}
	wg.Wait()
	for i, s := range servers {
		require.NoError(t, errs[i])
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		clients = append(clients, s.ClientURL())
		monitors = append(monitors, "http://"+s.MonitorAddr().String())
	}
	require.Eventually(t, func() bool {
		for _, s := range servers {
			if !s.JetStreamIsCurrent() || s.NumRoutes() < 2 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "NATS cluster formed")
	return clients, monitors
}

func freePortList(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		require.NoError(t, ln.Close())
	}
	return ports
}

// node is one `custos serve` process of a cluster.
type node struct {
	*server
	name, dir string
	args      []string
}

// startNode starts `custos serve` on dir with args and waits until it
// serves. It does not fail the test, so that nodes can start together.
func startNode(name, dir, addr string, args ...string) (*node, error) {
	s := &server{addr: addr, stdout: &eventstoretest.Buffer{}, logs: &eventstoretest.Buffer{}, logsDone: make(chan struct{})}
	all := append([]string{"serve", "--data", dir, "--addr", addr, "--node", name, "--log-level", "debug"}, args...)
	s.cmd = exec.Command(binary, all...)
	s.cmd.Stdout = s.stdout
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		defer close(s.logsDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "custos serving") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
		return &node{server: s, name: name, dir: dir, args: args}, nil
	case <-s.logsDone:
		_ = s.cmd.Wait()
		return nil, fmt.Errorf("node %s exited before serving: %s", name, s.logs.String())
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		return nil, fmt.Errorf("node %s did not start: %s", name, s.logs.String())
	}
}

// restart starts n again on its folder and address.
func (n *node) restart(t *testing.T) *node {
	t.Helper()
	re, err := startNode(n.name, n.dir, n.addr, n.args...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = re.cmd.Process.Kill() })
	return re
}

// kill9 kills n with SIGKILL and checks that it died of it.
func (n *node) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Kill())
	<-n.logsDone
	err := n.cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	st, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok && st.Signaled() && st.Signal() == syscall.SIGKILL, "node %s died of SIGKILL: %v", n.name, err)
}

// startNodes starts one node per args, the first alone (it creates the
// shared signing key and, as the first sequencer, the admin key), the
// others together, and returns them with the admin key.
func startNodes(t *testing.T, base string, args func(i int) []string) ([]*node, string) {
	t.Helper()
	nodes := make([]*node, 3)
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	start := func(i int) error {
		n, err := startNode(fmt.Sprintf("c%d", i), filepath.Join(base, fmt.Sprintf("c%d", i)), addrs[i], args(i)...)
		nodes[i] = n
		return err
	}
	var errs [3]error
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { errs[i] = start(i) })
		if i == 0 {
			// The first node writes the signing key the others share.
			require.Eventually(t, func() bool {
				_, err := os.Stat(sharedKey(base))
				return err == nil
			}, 20*time.Second, 10*time.Millisecond, "the first node creates the signing key")
		}
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			t.Cleanup(func() { _ = n.cmd.Process.Kill() })
		}
	}
	for i := range nodes {
		require.NoError(t, errs[i])
	}
	admin := ""
	for _, n := range nodes {
		if k := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(n.stdout.String()); k != "" {
			require.Empty(t, admin, "one node prints the first admin key")
			admin = k
		}
	}
	require.NotEmpty(t, admin, "the first sequencer prints the admin key")
	return nodes, admin
}

// sharedKey is the signing key every node of the test cluster uses: the
// first node's default path.
func sharedKey(base string) string { return filepath.Join(base, "c0") + ".signing-key" }

// sequencerOf asks n which node sequences the default chain.
func sequencerOf(t *testing.T, n *node, admin string) string {
	t.Helper()
	code, body := n.do(t, http.MethodGet, "/v1/cluster", admin, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var st struct {
		Chains []struct {
			Chain     string  `json:"chain"`
			Sequencer *string `json:"sequencer"`
		} `json:"chains"`
	}
	require.NoError(t, json.Unmarshal(body, &st))
	for _, c := range st.Chains {
		if c.Chain == "default" && c.Sequencer != nil {
			return *c.Sequencer
		}
	}
	return ""
}

// timedAck is an ack with the moments its request was sent and answered.
type timedAck struct {
	ack
	sent, at time.Time
	node     string
}

// clusterLoad evaluates through every node of nodes (workers per node)
// until stop is closed, retrying 503s, and returns the acknowledged
// decisions. An answer other than 200 or 503 fails the test; so does a
// refused connection to a node that is not in dead.
func clusterLoad(t *testing.T, nodes []*node, key string, dead *sync.Map, stop <-chan struct{}) []timedAck {
	const workers = 6
	var (
		mu   sync.Mutex
		acks []timedAck
		wg   sync.WaitGroup
		seq  atomic.Int64
	)
	for _, n := range nodes {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					session := fmt.Sprintf("cl-%s-%d", n.name, seq.Add(1))
					sent := time.Now()
					a, err := evaluateOnce(client, n.addr, key, session, "crm")
					switch {
					case err == nil:
						mu.Lock()
						acks = append(acks, timedAck{a, sent, time.Now(), n.name})
						mu.Unlock()
					case errors.Is(err, errNotAcknowledged) && strings.Contains(err.Error(), "status 503"):
						time.Sleep(10 * time.Millisecond)
					default:
						if _, gone := dead.Load(n.name); gone {
							return
						}
						t.Errorf("node %s: %v", n.name, err)
						return
					}
				}
			})
		}
	}
	<-stop
	wg.Wait()
	return acks
}

// requireClusterConsistent waits until every node applied through seq,
// then checks on each that the chain verifies and that all serve the same
// checkpoint.
func requireClusterConsistent(t *testing.T, nodes []*node, admin string, seq uint64) {
	t.Helper()
	for _, n := range nodes {
		// A node still catching up (a restarted one, under -race) answers
		// 503 after min_seq's 5 s wait: that is its contract, so ask again.
		var code int
		var body []byte
		require.Eventually(t, func() bool {
			code, body = n.do(t, http.MethodGet, "/v1/audit/verify?min_seq="+strconv.FormatUint(seq, 10), admin, "")
			return code != http.StatusServiceUnavailable
		}, 60*time.Second, 100*time.Millisecond, "node %s never applied through seq %d", n.name, seq)
		require.Equal(t, http.StatusOK, code, "node %s: %s", n.name, body)
		require.Contains(t, string(body), `"valid":true`, "node %s verifies its chain", n.name)
	}
	var seen []string
	require.Eventually(t, func() bool {
		seen = seen[:0]
		for _, n := range nodes {
			code, cp := n.do(t, http.MethodGet, "/v1/audit/checkpoint", admin, "")
			if code != http.StatusOK {
				return false
			}
			seen = append(seen, string(cp))
		}
		for _, cp := range seen {
			if cp != seen[0] {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every node serves the same checkpoint: %q", seen)
}

// stopAndCheck stops every live node gracefully and checks, offline on
// every folder, that each acknowledged decision is on the log at its seq
// and that the records, tree and checkpoints agree.
func stopAndCheck(t *testing.T, base string, nodes []*node, evalKeyID string, acks []timedAck) {
	t.Helper()
	for _, n := range nodes {
		n.stop(t)
	}
	all := make([]ack, len(acks))
	for i, a := range acks {
		all[i] = a.ack
	}
	for _, n := range nodes {
		if n.dir != filepath.Join(base, "c0") {
			key, err := os.ReadFile(sharedKey(base))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(signingKeyOf(n.dir), key, 0o600))
		}
		requireAcknowledged(t, n.dir, evalKeyID, all, "node "+n.name)
		requireEvidence(t, n.dir, "node "+n.name)
		v := runCLI(t, nil, "verify", "--data", n.dir)
		require.Equal(t, 0, v.code, "custos verify on node %s: %s%s", n.name, v.stdout, v.stderr)
	}
}

// resumedAfter returns how long after the kill the first decision asked
// for after it was acknowledged.
func resumedAfter(t *testing.T, acks []timedAck, killed time.Time) time.Duration {
	t.Helper()
	first := time.Time{}
	for _, a := range acks {
		if a.sent.After(killed) && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	require.False(t, first.IsZero(), "no decision was acknowledged after the kill")
	return first.Sub(killed)
}

// TestClusterSurvivesTheSequencersDeath runs three `custos serve` nodes on
// a three-server JetStream cluster (R3, in-process servers), drives
// evaluations through all three, kills the sequencing node with SIGKILL,
// and checks that decisions resume on the others within 5 s, that the
// killed node catches up once restarted, and that on every node each
// decision answered 200 is on the log at its seq and the chain, tree and
// checkpoints agree. It also checks forwarding, /readyz roles, GET
// /v1/cluster and min_seq.
func TestClusterSurvivesTheSequencersDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover: skipped with -short")
	}
	clients, monitors := natsCluster(t)
	base := t.TempDir()
	nodes, admin := startNodes(t, base, func(i int) []string {
		a := []string{"--nats", strings.Join(clients, ","), "--nats-monitor", strings.Join(monitors, ","), "--lease-ttl", "2s"}
		if i > 0 {
			a = append(a, "--signing-key", sharedKey(base))
		}
		return a
	})
	seqName := sequencerOf(t, nodes[2], admin)
	require.NotEmpty(t, seqName, "a node sequences the chain")
	var follower *node
	for _, n := range nodes {
		code, body := n.do(t, http.MethodGet, "/readyz", "", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		role := "follower"
		if n.name == seqName {
			role = "sequencer"
		} else {
			follower = n
		}
		require.JSONEq(t, `{"status":"ready","role":"`+role+`"}`, string(body), "node %s", n.name)
	}
	// Admin writes through a follower are forwarded to the sequencer.
	evalKey, evalKeyID := drillSetup(t, follower.server, admin)

	// GET /v1/cluster shows every node's progress; once they caught up,
	// none lags.
	require.Eventually(t, func() bool {
		code, body := follower.do(t, http.MethodGet, "/v1/cluster", admin, "")
		var st struct {
			Chains []struct {
				StreamSeq uint64 `json:"stream_seq"`
			} `json:"chains"`
			Nodes []struct {
				Node   string `json:"node"`
				Chains []struct {
					AppliedSeq uint64 `json:"applied_seq"`
					Lag        uint64 `json:"lag"`
				} `json:"chains"`
			} `json:"nodes"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || len(st.Nodes) != 3 || len(st.Chains) != 1 {
			return false
		}
		for _, n := range st.Nodes {
			if len(n.Chains) != 1 || n.Chains[0].Lag != 0 || n.Chains[0].AppliedSeq != st.Chains[0].StreamSeq {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "GET /v1/cluster lists three nodes, caught up")

	// A write through one node is readable on another with min_seq; a
	// seq no node has reached yet gets a 503, never older data.
	a, err := evaluateOnce(http.DefaultClient, nodes[1].addr, evalKey, "min-seq-1", "crm")
	require.NoError(t, err)
	code, body := nodes[2].do(t, http.MethodGet, fmt.Sprintf("/v1/audit/events?min_seq=%d&session_id=min-seq-1", a.seq), admin, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), a.id, "the read waited for the write")
	code, body = nodes[2].do(t, http.MethodGet, fmt.Sprintf("/v1/audit/events?min_seq=%d", a.seq+1_000_000), admin, "")
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	require.Contains(t, string(body), `"detail"`)

	var dead sync.Map
	stop := make(chan struct{})
	var acks []timedAck
	loaded := make(chan struct{})
	go func() { defer close(loaded); acks = clusterLoad(t, nodes, evalKey, &dead, stop) }()
	time.Sleep(time.Second)
	var victim *node
	var survivors []*node
	for _, n := range nodes {
		if n.name == seqName {
			victim = n
		} else {
			survivors = append(survivors, n)
		}
	}
	dead.Store(victim.name, true)
	killed := time.Now()
	victim.kill9(t)
	time.Sleep(resumeBound + time.Second)
	close(stop)
	<-loaded
	require.NotEmpty(t, acks)
	took := resumedAfter(t, acks, killed)
	t.Logf("%d decisions acknowledged; decisions resumed %v after the sequencer's death", len(acks), took.Round(time.Millisecond))
	require.Less(t, took, resumeBound, "decisions resume within 5 s of the sequencer's death")
	newSeq := sequencerOf(t, survivors[0], admin)
	require.NotEqual(t, victim.name, newSeq)
	require.NotEmpty(t, newSeq)

	// The killed node comes back as a follower and catches up.
	back := victim.restart(t)
	maxSeq := a.seq
	for _, x := range acks {
		maxSeq = max(maxSeq, x.seq)
	}
	live := append(survivors, back)
	requireClusterConsistent(t, live, admin, maxSeq)
	stopAndCheck(t, base, live, evalKeyID, acks)
}

// TestClusterSurvivesTheStreamLeadersDeath runs three nodes with embedded
// nats-servers (--nats-embedded, routes between them) and kills with
// SIGKILL the node whose server leads the stream: decisions resume within
// JetStream's own election time plus 5 s, and every decision answered
// 200 is on the log of both survivors at its seq.
func TestClusterSurvivesTheStreamLeadersDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover: skipped with -short")
	}
	ports := freePortList(t, 6)
	base := t.TempDir()
	route := func(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]) }
	nodes, admin := startNodes(t, base, func(i int) []string {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, route(j))
			}
		}
		a := []string{"--nats-embedded", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", ports[i]),
			"--nats-cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--nats-routes", strings.Join(routes, ","),
			"--lease-ttl", "2s"}
		if i > 0 {
			a = append(a, "--signing-key", sharedKey(base))
		}
		return a
	})
	evalKey, evalKeyID := drillSetup(t, nodes[1].server, admin)

	// Which server leads the stream: the servers are named after their
	// nodes.
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", ports[0], ports[1], ports[2]),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(context.Background(), "CUSTOS_LOG")
	require.NoError(t, err)
	info, err := stream.Info(context.Background())
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	require.Equal(t, 3, info.Config.Replicas)
	leader := info.Cluster.Leader
	t.Logf("stream leader %s, sequencer %s", leader, sequencerOf(t, nodes[0], admin))

	var dead sync.Map
	stop := make(chan struct{})
	var acks []timedAck
	loaded := make(chan struct{})
	go func() { defer close(loaded); acks = clusterLoad(t, nodes, evalKey, &dead, stop) }()
	time.Sleep(time.Second)
	var victim *node
	var survivors []*node
	for _, n := range nodes {
		if n.name == leader {
			victim = n
		} else {
			survivors = append(survivors, n)
		}
	}
	require.NotNil(t, victim, "the stream leader %s is one of the nodes", leader)
	dead.Store(victim.name, true)
	killed := time.Now()
	victim.kill9(t)
	time.Sleep(streamElection + resumeBound)
	close(stop)
	<-loaded
	took := resumedAfter(t, acks, killed)
	t.Logf("%d decisions acknowledged; decisions resumed %v after the stream leader's death", len(acks), took.Round(time.Millisecond))
	require.Less(t, took, streamElection+resumeBound, "decisions resume within JetStream's election plus 5 s")
	maxSeq := uint64(0)
	for _, x := range acks {
		maxSeq = max(maxSeq, x.seq)
	}
	requireClusterConsistent(t, survivors, admin, maxSeq)
	stopAndCheck(t, base, survivors, evalKeyID, acks)
}

// TestInitAgainstACluster initialises an empty cluster with custos init
// --nats (the key is printed once), refuses to do it twice, and a node
// served on the cluster afterwards takes the key.
func TestInitAgainstACluster(t *testing.T) {
	clients, monitors := natsCluster(t)
	base := t.TempDir()
	natsArgs := []string{"--nats", strings.Join(clients, ","), "--nats-monitor", strings.Join(monitors, ","), "--lease-ttl", "1s"}
	dir := filepath.Join(base, "c0")
	r := runCLI(t, nil, append([]string{"init", "--data", dir, "--node", "init0"}, natsArgs...)...)
	require.Equal(t, 0, r.code, "%s%s", r.stdout, r.stderr)
	admin := strings.TrimSpace(r.stdout)
	require.Regexp(t, keyPattern, admin)

	again := runCLI(t, nil, append([]string{"init", "--data", filepath.Join(base, "other"), "--node", "init1",
		"--signing-key", sharedKey(base)}, natsArgs...)...)
	require.Equal(t, 1, again.code, "a second init changes nothing: %s%s", again.stdout, again.stderr)
	require.Contains(t, again.stderr, "already initialised")
	require.NotRegexp(t, `cst_[0-9A-Za-z]{49}`, again.stdout)

	n, err := startNode("c1", filepath.Join(base, "c1"), freeAddr(t), append([]string{"--signing-key", sharedKey(base)}, natsArgs...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.cmd.Process.Kill() })
	require.NotContains(t, n.stdout.String(), "first admin key", "the cluster has its admin key")
	code, body := n.do(t, http.MethodGet, "/v1/keys", admin, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = n.do(t, http.MethodPost, "/v1/keys", admin, `{"name":"after-init","scope":"read"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	n.stop(t)
}

// TestServeRefusesServersWithoutSyncAlways: serve --nats reads the
// servers' /varz and refuses to start on one that does not fsync every
// write (JetStream's default), R1 included; nothing is created.
func TestServeRefusesServersWithoutSyncAlways(t *testing.T) {
	lazy, err := natsserver.NewServer(&natsserver.Options{ServerName: "lazy", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), HTTPHost: "127.0.0.1", HTTPPort: -1, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	go lazy.Start()
	require.True(t, lazy.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { lazy.Shutdown(); lazy.WaitForShutdown() })
	dir := filepath.Join(t.TempDir(), "data")
	for _, replicas := range []string{"1", "3"} {
		r := runCLI(t, nil, "serve", "--data", dir, "--addr", freeAddr(t), "--node", "n1", "--nats", lazy.ClientURL(),
			"--nats-monitor", "http://"+lazy.MonitorAddr().String(), "--nats-replicas", replicas)
		require.Equal(t, 1, r.code, "R%s: %s%s", replicas, r.stdout, r.stderr)
		require.Contains(t, r.stderr, "sync_interval: always", "R%s", replicas)
		require.NotContains(t, r.stdout, "first admin key")
	}
	_, err = os.Stat(filepath.Join(dir, "CURRENT"))
	require.ErrorIs(t, err, os.ErrNotExist, "no store was created")
}
