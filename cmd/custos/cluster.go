package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/jetstream"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
)

// clusterFlags configure a node of a cluster on NATS JetStream
// (docs/cluster.md). Without --nats and --nats-embedded the server is a
// single node on Pebble, as before.
type clusterFlags struct {
	natsURLs    []string // --nats: servers to join
	monitors    []string // --nats-monitor: their monitoring endpoints, for the sync check
	embedded    bool     // --nats-embedded: run a nats-server in this process
	listen      string   // --nats-listen: the embedded server's client HOST:PORT
	clusterAddr string   // --nats-cluster-listen: its route HOST:PORT
	routes      []string // --nats-routes: the other embedded servers' routes
	clusterName string   // --nats-cluster
	natsDir     string   // --nats-dir: the embedded server's JetStream folder
	monitorPort int      // --nats-monitor-port: the embedded server's /varz
	replicas    int      // --nats-replicas: of the stream and buckets when created
	node        string   // --node
	advertise   string   // --advertise: this node's API URL for the others
	leaseTTL    time.Duration
}

// enabled reports whether the server joins a cluster.
func (f clusterFlags) enabled() bool { return len(f.natsURLs) > 0 || f.embedded }

func addClusterFlags(cmd *cobra.Command, f *clusterFlags) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.natsURLs, "nats", nil, "join a cluster: NATS servers (nats://host:port, comma-separated) whose JetStream holds the log; they must run with sync_interval: always (docs/cluster.md)")
	fl.StringSliceVar(&f.monitors, "nats-monitor", nil, "monitoring endpoints (http://host:8222) of every NATS server of the cluster, read at start to confirm sync_always; default: each --nats host on port 8222")
	fl.BoolVar(&f.embedded, "nats-embedded", false, "run a nats-server with JetStream (sync always) in this process, its store in --nats-dir; with --nats-routes, one server of a cluster")
	fl.StringVar(&f.listen, "nats-listen", "127.0.0.1:4222", "client HOST:PORT of the embedded nats-server")
	fl.StringVar(&f.clusterAddr, "nats-cluster-listen", "", "route HOST:PORT of the embedded nats-server (needed with --nats-routes)")
	fl.StringSliceVar(&f.routes, "nats-routes", nil, "route URLs (nats://host:port) of the other embedded servers of the cluster")
	fl.StringVar(&f.clusterName, "nats-cluster", "custos", "name of the embedded servers' cluster")
	fl.StringVar(&f.natsDir, "nats-dir", "", "JetStream folder of the embedded nats-server (default DATA.nats, beside --data)")
	fl.IntVar(&f.monitorPort, "nats-monitor-port", 0, "serve the embedded nats-server's monitoring endpoints (/varz) on this port; 0 disables")
	fl.IntVar(&f.replicas, "nats-replicas", 0, "replicas of the stream and buckets when custos creates them: 3 in production; 0: 1 for a lone embedded server, else 3")
	fl.StringVar(&f.node, "node", "", "this node's name, unique in the cluster (letters, digits, - and _); default the host name")
	fl.StringVar(&f.advertise, "advertise", "", "URL where the other nodes reach this node's API (http://host:port); default http://--addr")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 3*time.Second, "how long a sequencer's lease lives without renewal: how long the cluster waits for a sequencer that died")
}

// clusterNode is this process's part of a cluster: the embedded
// nats-server (if any), the connection, the JetStream log and the
// sequencer. It implements httpapi.Cluster. Close it after the store.
type clusterNode struct {
	name   string
	logger *slog.Logger
	srv    *server.Server // nil without --nats-embedded
	nc     *nats.Conn
	log    *jetstream.Log
	seq    *jetstream.Sequencer
	ttl    time.Duration // of the leases

	mu      sync.Mutex
	ledgers map[string]*writeside.Ledger

	// reg is the deployment's Registry once it is open: the system
	// chain's follower syncs it, and a node that starts sequencing a
	// tenant's chain reconciles it.
	reg atomic.Pointer[tenancy.Registry]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var (
	_ httpapi.Cluster = (*clusterNode)(nil)
	_ tenancy.Cluster = (*clusterNode)(nil)
)

// openServeStore opens serve's store: the local Pebble store, or on a node
// of a cluster the JetStream log materialized into it (store is then the
// Log's local store, log the Log, node the cluster). The caller closes the
// store, then node (nil for a single node, whose Close does nothing).
func openServeStore(ctx context.Context, f clusterFlags, addr string, opts eventstore.Options, logger *slog.Logger) (store *eventstore.Store, log eventstore.LogStore, node *clusterNode, err error) {
	if !f.enabled() {
		store, err = eventstore.Open(opts)
		return store, store, nil, err
	}
	opts.CreateIfMissing = true
	node, err = joinCluster(ctx, f, addr, opts, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := markClusterFolder(opts.Dir, node.name); err != nil {
		node.Close()
		return nil, nil, nil, err
	}
	return node.log.Store, node.log, node, nil
}

// joinCluster starts the embedded server (if asked), connects, checks
// sync_always, opens the log and starts the sequencer.
func joinCluster(ctx context.Context, f clusterFlags, addr string, opts eventstore.Options, logger *slog.Logger) (n *clusterNode, err error) {
	if f.embedded && len(f.natsURLs) > 0 {
		return nil, errors.New("--nats and --nats-embedded exclude each other: an embedded server joins others through --nats-routes")
	}
	name := f.node
	if name == "" {
		h, herr := os.Hostname()
		if herr != nil {
			return nil, fmt.Errorf("--node: %w", herr)
		}
		name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '-'
		}, h)
	}
	advertise, err := advertiseURL(f.advertise, addr)
	if err != nil {
		return nil, err
	}
	n = &clusterNode{name: name, logger: logger.With("node", name), ledgers: map[string]*writeside.Ledger{}, ttl: f.leaseTTL}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	replicas := f.replicas
	var check func(context.Context) error
	urls := f.natsURLs
	if f.embedded {
		if n.srv, err = startEmbedded(f, name, opts.Dir); err != nil {
			return nil, err
		}
		urls = []string{n.srv.ClientURL()}
		if replicas == 0 && len(f.routes) == 0 {
			replicas = 1
		}
		check = jetstream.EmbeddedSyncCheck(n.srv)
		if len(f.monitors) > 0 {
			local, peers := check, jetstream.MonitorSyncCheck(&http.Client{Timeout: 5 * time.Second}, f.monitors...)
			check = func(ctx context.Context) error { return errors.Join(local(ctx), peers(ctx)) }
		}
	} else {
		monitors := f.monitors
		if len(monitors) == 0 {
			if monitors, err = defaultMonitors(urls); err != nil {
				return nil, err
			}
		}
		check = jetstream.MonitorSyncCheck(&http.Client{Timeout: 5 * time.Second}, monitors...)
	}
	if replicas == 0 {
		replicas = 3
	}
	// Every stream custos writes, R1 included, must be on servers that
	// fsync each write: the local store is fsynced before it answers, and
	// a stream that lost what the node acknowledged contradicts it.
	if err := check(ctx); err != nil {
		return nil, err
	}
	if n.nc, err = nats.Connect(strings.Join(urls, ","), nats.Name("custos "+name), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true)); err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", strings.Join(urls, ","), err)
	}
	jo := jetstream.Options{Conn: n.nc, Store: opts, Replicas: replicas, SyncChecked: check, Logger: logger}
	// A cluster that is forming has no JetStream leader yet: retry.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n.log, err = jetstream.Open(ctx, jo)
		if err == nil || errors.Is(err, jetstream.ErrNotSyncAlways) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		logger.Info("waiting for JetStream", "err", err)
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("open the JetStream log: %w", err)
	}
	for {
		// The system chain's holder sequences every chain: a superadmin
		// action is recorded on the system chain and a tenant's.
		n.seq, err = n.log.StartSequencer(ctx, jetstream.LeaseOptions{Node: name, URL: advertise, TTL: f.leaseTTL, Replicas: replicas,
			Prepare: n.prepare, Logger: n.logger, Anchor: tenants.SystemChain})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		logger.Info("waiting for JetStream", "err", err)
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	n.logger.Info("joined the cluster", "nats", strings.Join(urls, ","), "replicas", replicas, "advertise", advertise)
	return n, nil
}

// startEmbedded starts the in-process nats-server of --nats-embedded.
func startEmbedded(f clusterFlags, name, dataDir string) (*server.Server, error) {
	dir := f.natsDir
	if dir == "" {
		dir = filepath.Clean(dataDir) + ".nats"
	}
	host, port, err := splitHostPort("--nats-listen", f.listen)
	if err != nil {
		return nil, err
	}
	o := jetstream.EmbeddedOptions{Name: name, Dir: dir, Host: host, Port: port, MonitorPort: f.monitorPort}
	if len(f.routes) > 0 || f.clusterAddr != "" {
		if f.clusterAddr == "" {
			return nil, errors.New("--nats-routes needs --nats-cluster-listen HOST:PORT for this server's own routes")
		}
		chost, cport, err := splitHostPort("--nats-cluster-listen", f.clusterAddr)
		if err != nil {
			return nil, err
		}
		if chost != host {
			return nil, fmt.Errorf("--nats-cluster-listen %s: the embedded server listens for routes on the host of --nats-listen (%s)", f.clusterAddr, host)
		}
		o.Cluster, o.ClusterPort, o.Routes = f.clusterName, cport, f.routes
	}
	s, err := jetstream.StartEmbedded(o)
	if err != nil {
		return nil, fmt.Errorf("--nats-embedded: %w", err)
	}
	return s, nil
}

func splitHostPort(flag, hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", flag, hp, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: not a port", flag, hp)
	}
	return host, port, nil
}

// advertiseURL is --advertise, or http:// and --addr when that names a
// host.
func advertiseURL(advertise, addr string) (string, error) {
	if advertise != "" {
		u, err := url.Parse(advertise)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--advertise %q: give http://host:port", advertise)
		}
		return strings.TrimRight(advertise, "/"), nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("--addr %s listens on every address: give --advertise http://host:port, where the other nodes reach this one", addr)
	}
	return "http://" + addr, nil
}

// defaultMonitors is http://host:8222 for each NATS URL.
func defaultMonitors(urls []string) ([]string, error) {
	var out []string
	for _, raw := range urls {
		for _, one := range strings.Split(raw, ",") {
			u, err := url.Parse(strings.TrimSpace(one))
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("--nats %q: give nats://host:port", one)
			}
			out = append(out, "http://"+net.JoinHostPort(u.Hostname(), "8222"))
		}
	}
	return out, nil
}

// Opened implements tenancy.Cluster: the node follows ledger's chain and
// contends for it.
func (n *clusterNode) Opened(ledger *writeside.Ledger) { n.follow(ledger) }

// Sequencing implements tenancy.Cluster.
func (n *clusterNode) Sequencing(chain string) bool { return n.seq.Sequencing(chain) }

// AwaitSequencing implements tenancy.Cluster: it waits at most four lease
// TTLs.
func (n *clusterNode) AwaitSequencing(ctx context.Context, chain string) error {
	deadline := time.Now().Add(4 * n.ttl)
	for !n.seq.Sequencing(chain) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: chain %s: this node did not take its lease in time", jetstream.ErrNotSequencer, chain)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// follow makes the node contend for ledger's chain and keeps ledger
// current while another node sequences it.
func (n *clusterNode) follow(ledger *writeside.Ledger) {
	if n == nil {
		return
	}
	chain := ledger.Chain()
	n.mu.Lock()
	n.ledgers[chain] = ledger
	n.mu.Unlock()
	n.wg.Go(func() { n.followLedger(chain, ledger) })
	n.seq.Register(chain)
}

// followLedger folds into ledger what other nodes sequence, each time the
// log applied more than the ledger holds and at least once a second (a
// ledger left with a fenced write of its own rebuilds then). Each time
// the node starts sequencing the chain it brings the Registry up to date
// (sequenced).
func (n *clusterNode) followLedger(chain string, ledger *writeside.Ledger) {
	sequencing := false
	for n.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(n.ctx, time.Second)
		err := n.log.WaitApplied(ctx, chain, ledger.Applied().Seq+1)
		cancel()
		if n.ctx.Err() != nil {
			return
		}
		now := n.seq.Sequencing(chain)
		if now && !sequencing {
			n.sequenced(chain)
		}
		sequencing = now
		if now {
			if err == nil {
				time.Sleep(time.Millisecond) // this node's own commits
			}
			continue
		}
		before := ledger.Applied().Seq
		head, err := ledger.CatchUp(n.ctx)
		if err != nil {
			if errors.Is(err, eventstore.ErrClosed) {
				return
			}
			n.logger.Warn("follow the chain", "chain", chain, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if head.Seq != before && chain == tenants.SystemChain {
			n.syncTenants()
		}
	}
}

// syncTenants opens the tenants another node created and applies their
// suspensions (tenancy.Registry.Sync).
func (n *clusterNode) syncTenants() {
	if reg := n.reg.Load(); reg != nil {
		if err := reg.Sync(n.ctx); err != nil && n.ctx.Err() == nil {
			n.logger.Warn("open the tenants the system chain lists", "err", err)
		}
	}
}

// sequenced runs when this node starts sequencing chain: for the system
// chain it opens the tenants it does not know yet, for a tenant's chain it
// records what the system chain holds of the tenant and the tenant's chain
// does not (an action the previous sequencer left half done).
func (n *clusterNode) sequenced(chain string) {
	reg := n.reg.Load()
	if reg == nil {
		return // the Registry is opening; it reconciles what it opens
	}
	if chain == tenants.SystemChain {
		n.syncTenants()
		return
	}
	if err := reg.Reconcile(n.ctx, chain); err != nil && n.ctx.Err() == nil {
		n.logger.Warn("record the system chain's view of the tenant", "chain", chain, "err", err)
	}
}

// prepare is the Sequencer's Prepare: the ledger of chain folds in what
// it has not seen (or starts over after a fence) before this node
// sequences it.
func (n *clusterNode) prepare(ctx context.Context, chain string, fenced bool) error {
	n.mu.Lock()
	ledger := n.ledgers[chain]
	n.mu.Unlock()
	if ledger == nil {
		return fmt.Errorf("no ledger for chain %s", chain)
	}
	if fenced {
		return ledger.Rebuild(ctx)
	}
	_, err := ledger.CatchUp(ctx)
	return err
}

// sequencerKnown waits (at most wait) until some node is known to
// sequence chain, and reports whether it is this one.
func (n *clusterNode) sequencerKnown(ctx context.Context, chain string, wait time.Duration) (local, known bool) {
	deadline := time.Now().Add(wait)
	for {
		if h, local, ok := n.seq.Holder(chain); ok && (local || h.Node != n.name) {
			return local, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startDeployment runs once reg is open on a node of a cluster. The node
// that sequences the system chain (and so every chain) makes the
// deployment's first records, as serve does on a new folder: tenant
// default and its first admin key on an empty cluster, the superadmin key
// on a cluster that has none (one written before tenants), each printed
// once on stdout. Another node waits until tenant default is open. follows
// reports whether another node sequences the deployment: serve's start-up
// writes (--policies, the --alerts rules) are that node's to make. A
// single node (nil) follows nothing and starts nothing.
func (n *clusterNode) startDeployment(ctx context.Context, reg *tenancy.Registry, stdout io.Writer, dataDir string) (follows bool, err error) {
	if n == nil {
		return false, nil
	}
	n.reg.Store(reg)
	deadline := time.Now().Add(30 * time.Second)
	warned := false
	for {
		if _, local, ok := n.seq.Holder(tenants.SystemChain); ok && local {
			return false, n.firstRecords(ctx, reg, stdout, dataDir)
		}
		n.syncTenants()
		if _, ok := reg.Tenant(tenants.DefaultID); ok && n.holderKnown(tenants.DefaultID) {
			if h, _, ok := n.seq.Holder(tenants.SystemChain); ok && h.Node != n.name {
				n.logger.Info("another node sequences the deployment: its --policies and --alerts rules apply, not this node's", "sequencer", h.Node)
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, errors.New("no node of the cluster sequences the deployment, or it has not created tenant default yet: check the other nodes")
		}
		if !warned && time.Now().After(deadline.Add(-25*time.Second)) {
			n.logger.Warn("waiting for a node to sequence the deployment and create tenant default")
			warned = true
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// caughtUp waits until the node's copy holds every record the stream held
// of each chain when it was called, or ctx ends. A node restarted behind
// the stream must not check its copy against what the witnesses cosigned
// meanwhile (through the sequencer): the copy would look truncated. A
// single node (nil) has nothing to wait for.
func (n *clusterNode) caughtUp(ctx context.Context, chains []string) error {
	if n == nil {
		return nil
	}
	for _, chain := range chains {
		tail, err := n.log.StreamSeq(ctx, chain)
		if err != nil {
			return err
		}
		if h, err := n.log.Store.Head(chain); err == nil && h.Seq >= tail {
			continue
		}
		n.logger.Info("catching up with the stream before checking the witnesses", "chain", chain, "stream_seq", tail)
		if err := n.log.WaitApplied(ctx, chain, tail); err != nil {
			return fmt.Errorf("catch up chain %s with the stream: %w", chain, err)
		}
	}
	return nil
}

// holderKnown reports whether another node is known to sequence chain.
func (n *clusterNode) holderKnown(chain string) bool {
	h, _, ok := n.seq.Holder(chain)
	return ok && h.Node != n.name
}

// firstRecords is startDeployment on the node that sequences the system
// chain.
func (n *clusterNode) firstRecords(ctx context.Context, reg *tenancy.Registry, stdout io.Writer, dataDir string) error {
	if err := n.AwaitSequencing(ctx, tenants.SystemChain); err != nil {
		return err
	}
	if err := reg.Sync(ctx); err != nil {
		return err
	}
	_, known := reg.Tenant(tenants.DefaultID)
	head, err := n.log.Store.Head(tenants.DefaultID)
	if err != nil {
		return err
	}
	fresh := !known && head.Seq == 0
	if _, err := reg.EnsureDefault(ctx); err != nil {
		return err
	}
	// Serve only once this node sequences every chain: a write it takes
	// before would be refused (a retryable 503).
	for _, chain := range reg.Chains() {
		if err := n.AwaitSequencing(ctx, chain); err != nil {
			return err
		}
	}
	if fresh {
		def, _ := reg.Tenant(tenants.DefaultID)
		key, created, err := createAdminKey(ctx, def.Ledger, writeside.ActorInit, "bootstrap-admin")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, `
==================== custos: first admin key ====================
%s
Copy it now: this is the only time it is shown (custos keeps only
its SHA-256, so it cannot show it again). Scope admin, key_id
%s, expires %s (%d days). Node %s created it for the cluster.
=================================================================

`, key, created.KeyID, created.ExpiresAt.UTC().Format(time.RFC3339),
			int(created.ExpiresAt.Sub(created.CreatedAt).Round(24*time.Hour).Hours()/24), n.name)
	}
	return upgradeToTenants(ctx, reg, stdout, clusterHint, n.logger) // the superadmin key, once
}

// asSequencer joins the cluster with a node on dir (created if missing),
// opens the deployment's Registry, takes the system chain's lease (and so
// every chain's) and runs do; then it leaves the cluster. It is for the
// commands that write to a cluster while no serve runs on it (init, the
// superadmin key's reset): it fails when another node sequences the
// deployment.
func asSequencer(ctx context.Context, f clusterFlags, dir string, sig signing, logger *slog.Logger, do func(*clusterNode, *tenancy.Registry) error) error {
	if !storeExists(dir) {
		if err := requireEmpty(dir); err != nil {
			return err
		}
	}
	// No other node forwards to this one: it never holds the lease while
	// another serves.
	_, log, node, err := openServeStore(ctx, f, "127.0.0.1:0", eventstore.Options{Dir: dir, Logger: logger, Signer: sig.signer}, logger)
	if err != nil {
		return err
	}
	defer node.Close()
	reg, err := tenancy.Open(ctx, tenancy.Config{Store: log, Logger: logger, Cluster: node, Ledger: writeside.Config{Logger: logger}})
	if err != nil {
		return err
	}
	defer reg.Close()
	// A node stopped just now may still be named in a lease that expires
	// within its TTL: wait for the lease rather than give up at once.
	if err := node.AwaitSequencing(ctx, tenants.SystemChain); err != nil {
		who := "no node took the lease in time"
		if h, _, known := node.seq.Holder(tenants.SystemChain); known && h.Node != node.name {
			who = "node " + h.Node + " sequences it (serve runs on the cluster: stop every node first)"
		}
		return fmt.Errorf("could not sequence the cluster's chains: %s", who)
	}
	if err := reg.Sync(ctx); err != nil {
		return err
	}
	return do(node, reg)
}

// bootstrapCluster is init against a cluster (asSequencer): if the
// cluster holds nothing yet, it records tenant default and creates its
// first admin key, which it returns. The superadmin key is printed by the
// first serve. It refuses a cluster with records (errAlreadyInitialised).
func bootstrapCluster(ctx context.Context, f clusterFlags, dir string, sig signing, logger *slog.Logger) (key string, created keys.KeyCreated, err error) {
	err = asSequencer(ctx, f, dir, sig, logger, func(node *clusterNode, reg *tenancy.Registry) error {
		for _, chain := range []string{tenants.SystemChain, tenants.DefaultID} {
			head, err := node.log.Store.Head(chain)
			if err != nil {
				return err
			}
			if head.Seq > 0 {
				return fmt.Errorf("%w: the cluster's chain %s holds %d events; if the admin key is lost, mint one with the superadmin key (POST /v1/tenants/default/admin-keys)", errAlreadyInitialised, chain, head.Seq)
			}
		}
		if _, err := reg.EnsureDefault(ctx); err != nil {
			return err
		}
		def, _ := reg.Tenant(tenants.DefaultID)
		key, created, err = createAdminKey(ctx, def.Ledger, writeside.ActorInit, "bootstrap-admin")
		return err
	})
	if err != nil && !errors.Is(err, errAlreadyInitialised) {
		err = fmt.Errorf("init: %w", err)
	}
	return key, created, err
}

// resetClusterSuperadmin is superadmin-key reset against a cluster
// (asSequencer): a new superadmin key on the system chain, actor
// system:reset.
func resetClusterSuperadmin(ctx context.Context, f clusterFlags, dir string, sig signing, logger *slog.Logger) (key string, err error) {
	err = asSequencer(ctx, f, dir, sig, logger, func(_ *clusterNode, reg *tenancy.Registry) error {
		var err error
		key, _, err = reg.CreateSuperadminKey(ctx, writeside.ActorReset, "reset-superadmin")
		return err
	})
	return key, err
}

// clusterMarker is the file beside a cluster node's data folder that says
// the folder is a copy of the cluster's log: written to offline, it would
// fork from the stream (openForReset refuses it).
func clusterMarker(dataDir string) string { return filepath.Clean(dataDir) + ".cluster" }

// markClusterFolder writes clusterMarker for a node named name.
func markClusterFolder(dataDir, name string) error {
	body := fmt.Sprintf("custos cluster node %s: this data folder is a copy of the cluster's log in NATS JetStream.\n"+
		"Do not write to it offline; see docs/cluster.md.\n", name)
	if err := os.WriteFile(clusterMarker(dataDir), []byte(body), 0o600); err != nil {
		return fmt.Errorf("mark %s as a cluster node's folder: %w", dataDir, err)
	}
	return nil
}

// ready is serve's readiness: the store's, or on a node of a cluster the
// log's (its follower included).
func (n *clusterNode) ready(single func() error) func() error {
	if n == nil {
		return single
	}
	return n.log.Failed
}

// bootstrapSingle is bootstrap for a single node. A node of a cluster
// creates no store here (its first admin key comes from the chain's
// sequencer, startChain): it only refuses a folder that holds something
// else, and answers errAlreadyInitialised.
func bootstrapSingle(ctx context.Context, o serveOptions, sig signing, logger *slog.Logger) (string, keys.KeyCreated, error) {
	if !o.cluster.enabled() {
		return bootstrap(ctx, o.dataDir, sig, logger)
	}
	if !storeExists(o.dataDir) {
		if err := requireEmpty(o.dataDir); err != nil {
			return "", keys.KeyCreated{}, err
		}
	}
	return "", keys.KeyCreated{}, errAlreadyInitialised
}

// api returns the node as an httpapi.Cluster, nil for a single node.
func (n *clusterNode) api() httpapi.Cluster {
	if n == nil {
		return nil
	}
	return n
}

// Sequencer implements httpapi.Cluster.
func (n *clusterNode) Sequencer(chain string) (string, bool, bool) {
	h, local, ok := n.seq.Holder(chain)
	if !ok || !local && h.Node == n.name {
		return "", false, false // vacant, or this node is still preparing
	}
	return h.URL, local, true
}

// Role implements httpapi.Cluster.
func (n *clusterNode) Role() string {
	for _, c := range n.seq.Chains() {
		if n.seq.Sequencing(c) {
			return wire.RoleSequencer
		}
	}
	return wire.RoleFollower
}

// Status implements httpapi.Cluster.
func (n *clusterNode) Status(ctx context.Context) (wire.Cluster, error) {
	st := wire.Cluster{Node: n.name, Role: n.Role(), Chains: []wire.ClusterChain{}, Nodes: []wire.ClusterNode{}}
	tails := map[string]uint64{}
	for _, c := range n.seq.Chains() {
		tail, err := n.log.StreamSeq(ctx, c)
		if err != nil {
			return wire.Cluster{}, err
		}
		tails[c] = tail
		cc := wire.ClusterChain{Chain: c, StreamSeq: tail}
		if h, _, ok := n.seq.Holder(c); ok {
			cc.Sequencer, cc.SequencerURL = &h.Node, &h.URL
		}
		st.Chains = append(st.Chains, cc)
	}
	reports, err := n.seq.Nodes(ctx)
	if err != nil {
		return wire.Cluster{}, err
	}
	for _, r := range reports {
		cn := wire.ClusterNode{Node: r.Node, URL: r.URL, ReportedAt: r.At, Chains: []wire.NodeChain{}}
		for _, c := range n.seq.Chains() {
			applied, ok := r.Applied[c]
			if !ok {
				continue
			}
			nc := wire.NodeChain{Chain: c, AppliedSeq: applied}
			if tails[c] > applied {
				nc.Lag = tails[c] - applied
			}
			cn.Chains = append(cn.Chains, nc)
		}
		st.Nodes = append(st.Nodes, cn)
	}
	return st, nil
}

// Close gives up this node's leases, stops following, closes the log
// (its local store is closed already, or now), the connection and the
// embedded server. Safe on nil and twice.
func (n *clusterNode) Close() {
	if n == nil {
		return
	}
	n.once.Do(func() {
		if n.seq != nil {
			n.seq.Close()
		}
		n.cancel()
		n.wg.Wait()
		if n.log != nil {
			if err := n.log.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
				n.logger.Warn("close the JetStream log", "err", err)
			}
		}
		if n.nc != nil {
			n.nc.Close()
		}
		if n.srv != nil {
			n.srv.Shutdown()
			n.srv.WaitForShutdown()
		}
	})
}
