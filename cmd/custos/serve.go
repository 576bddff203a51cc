package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/cmd/internal/policyfile"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

type serveOptions struct {
	dataDir         string
	policies        string
	snapshotEvery   int
	requireBound    bool // only keys bound to an agent may evaluate
	addr            string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	pprof           bool   // serve net/http/pprof on pprofAddr
	pprofAddr       string // never the API listener
	limits          httpapi.Limits
	backupDir       string // online backups go under it; "" disables them
	alerts          alertOptions
	keys            signingKeyFlags
	signExisting    bool   // sign a store from before checkpoints once, after verifying it
	memoryLimit     string // Go's soft memory limit; "" for the default share
	memorySet       []any  // what tuneGC set, logged once the store is open
	witnesses       witnessFlags
	cluster         clusterFlags // --nats, --nats-embedded...: a node of a cluster (cluster.go)
}

func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	var o serveOptions
	var level string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API on the store in --data",
		Long: `serve opens (or, on an empty folder, creates) the store in --data and serves the
HTTP API on --addr. On a new folder it creates a first admin key and prints it
once in a marked block on stdout.

With --policies PATH (a YAML file or a folder of them, AutoPIL's format) it
makes the stored policies equal the files before serving, appending only the
differences as policy.created / policy.updated / policy.deleted events (actor
system:policy-sync): restarting with the same files appends nothing. Invalid
files stop the start with every problem listed.

The server verifies its own chain: each new record once, and the whole chain
at start and every --verify-every (default 24h). A break raises an alert.
With --alerts PATH (a rules file, see custos alerts validate) it sets those
alert rules (alert.rule_set, actor system:alert-sync; unchanged rules append
nothing); alerts go to every --webhook URL, signed with --webhook-secret
(or CUSTOS_WEBHOOK_SECRET), and to the webhooks of the file (docs/alerts.md).

GET /metrics serves Prometheus metrics without a key. With --pprof (or
CUSTOS_PPROF=true) Go profiles are served under /debug/pprof/ on --pprof-addr,
a listener of their own, never on --addr.

Traces go over OTLP/HTTP when the standard OpenTelemetry environment asks
for them (OTEL_EXPORTER_OTLP_ENDPOINT and the rest of OTEL_*, docs/runbook.md,
"Tracing"): a span per request and per group commit. Unset, nothing is
traced and nothing costs. The OpenTelemetry default sampler traces every
request, which costs about a quarter to a third more server CPU per
decision (docs/benchmarks.md, "Traces"), and serve warns at start when so;
OTEL_TRACES_SAMPLER=parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG=0.01
traces 1% of requests, and every caller that sends a sampled traceparent,
at no measurable cost.

Hostile clients are bounded by deadlines (--read-header-timeout,
--body-timeout, a per-write --write-timeout, --idle-timeout), a header limit
(--max-header-bytes) and caps (--max-connections, --max-in-flight) beyond
which the answer is a fast 503, and a cap per tenant (--tenant-max-in-flight)
beyond which that tenant's requests get a fast 429; docs/runbook.md lists the
defaults. With --backup-dir DIR a superadmin key may ask for online backups,
written to DIR/NAME; without it they are refused.

Tenants (docs/tenants.md): the folder holds tenant default and any tenants a
superadmin key creates, each on its own chain. The first start of a folder
(new, or written by a release before tenants) records tenant default and
prints a deployment superadmin key once, in a marked block on stdout.

SIGINT or SIGTERM shut it down gracefully: it stops accepting connections,
finishes in-flight requests and their appends, then closes the store. The
whole shutdown ends within --shutdown-timeout (at least 2 s are left for
closing the store); a store that does not close in time (a failed disk) is
left to the restart, which recovers from the log, and the exit code is 2.

Every commit is covered by a checkpoint signed with the key at
--signing-key (default DATA.signing-key, beside the data folder). On a new
folder without that key, serve creates it there and says so; on an existing
store without it, serve refuses to start. At start it replays the chain
against its latest signed checkpoint and refuses to start when the log
contradicts it (rewritten, truncated, forked) or holds records no
checkpoint covers (appended without the key). See docs/runbook.md,
"Signing key".

With --witness URL=VKEY (repeatable) it pushes the latest checkpoint of
every chain (each tenant's, including tenants created while it runs, and
the system chain), with its consistency proof, to each witness (custos
witness serve, or any C2SP tlog-witness) every --witness-interval while it
changes, in the background: a witness that is down delays cosigning, never
a decision. Tenant checkpoints also carry the deployment key's signature
when pushed, so a witness given the deployment verifier key cosigns every
tenant. Once --witness-quorum of them cosigned a chain's checkpoint it is
kept (fsynced) in --cosigned (default DATA.cosigned) for tenant default and
in that file with .<chain> appended (DATA.cosigned.acme) for any other, and
GET /v1/audit/checkpoint serves it with their cosignature lines to that
tenant's keys. At start every chain must be consistent with its kept
checkpoint and with what the witnesses cosigned, or serve refuses to start
naming the chain. See docs/proofs.md, "Witnesses".

Exit codes: 0 after a clean shutdown, 1 when the store cannot be opened at
start (one line on stderr says why), 2 for other errors, including a
shutdown after the store failed.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			var err error
			if o.memorySet, err = tuneGC(o.memoryLimit, os.LookupEnv, os.ReadFile); err != nil {
				return err
			}
			return serve(ctx, o, stdout, newLogger(stderr, o.logLevel))
		},
	}
	cmd.Flags().StringVar(&o.dataDir, "data", defaultDataDir, "data folder of the store (created if empty)")
	cmd.Flags().StringVar(&o.addr, "addr", defaultAddr, "HOST:PORT to listen on")
	cmd.Flags().BoolVar(&o.requireBound, "require-bound-keys", false, "let only keys bound to an agent evaluate: unbound evaluate keys cannot be created, and unbound keys get 403 on evaluate")
	cmd.Flags().IntVar(&o.snapshotEvery, "snapshot-every", writeside.DefaultSnapshotEvery, "save a snapshot of the state every N events (or, once the state holds more than N keys, policies, agents and sessions, every as many events as it holds) so restarts replay only the tail; negative disables")
	cmd.Flags().StringVar(&o.policies, "policies", "", "policy file or folder to load at start; only differences from the stored policies are appended")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	cmd.Flags().BoolVar(&o.pprof, "pprof", false, "serve Go profiles (net/http/pprof) on --pprof-addr, a listener apart from the API")
	cmd.Flags().StringVar(&o.pprofAddr, "pprof-addr", defaultPprofAddr, "HOST:PORT for --pprof; keep it on loopback")
	cmd.Flags().StringVar(&o.backupDir, "backup-dir", "", "folder online backups are written under (POST /v1/admin/backup {\"name\": NAME} writes DIR/NAME); created if missing, refused inside --data; empty disables online backups")
	cmd.Flags().BoolVar(&o.signExisting, "sign-existing", false, "once, for a store from before signed checkpoints: verify the chain, then sign its current tree")
	addSigningKeyFlags(cmd, &o.keys, true)
	cmd.Flags().StringVar(&o.memoryLimit, "memory-limit", "", fmt.Sprintf("Go's soft memory limit (GOMEMLIMIT), e.g. 1GiB, 512MiB or off; empty: %.0f%% of the container's memory limit, else of the machine's; GOMEMLIMIT in the environment wins", defaultMemoryShare*100))
	addLimitFlags(cmd, &o.limits)
	addAlertFlags(cmd, &o.alerts)
	addWitnessFlags(cmd, &o.witnesses)
	addClusterFlags(cmd, &o.cluster)
	return cmd
}

// serve runs the server until ctx is done. Close order: HTTP server (drains
// requests and their appends), then the store (commits what is queued), then
// the message bus.
func serve(ctx context.Context, o serveOptions, stdout io.Writer, logger *slog.Logger) error {
	var desired []policy.Policy
	if o.policies != "" {
		var err error
		if desired, err = policyfile.Load(o.policies); err != nil {
			return fmt.Errorf("--policies %s:\n%s", o.policies, strings.Join(problemLines(err), "\n"))
		}
	}
	alertFile, webhooks, err := loadAlerts(o.alerts)
	if err != nil {
		return err
	}
	privateFiles()
	fileLimit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if o.limits.MaxConnections, err = connectionCap(o.limits.MaxConnections, fileLimit); err != nil {
		return err
	}
	var backupDir string
	if o.backupDir != "" {
		if backupDir, err = backupRoot(o.backupDir, o.dataDir); err != nil {
			return err
		}
	}
	sig, err := serveSigning(ctx, o, logger)
	if err != nil {
		return withCode(1, err)
	}
	key, created, err := bootstrapSingle(ctx, o, sig, logger)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, `
==================== custos: first admin key ====================
%s
Copy it now: this is the only time it is shown (custos keeps only
its SHA-256, so it cannot show it again). Scope admin, key_id
%s, expires %s (%d days).
Lost it? custos admin-key reset --data %s
=================================================================

`, key, created.KeyID, created.ExpiresAt.UTC().Format(time.RFC3339),
			int(created.ExpiresAt.Sub(created.CreatedAt).Round(24*time.Hour).Hours()/24), o.dataDir)
	case errors.Is(err, errAlreadyInitialised):
	default:
		return withCode(1, err)
	}

	// abandoned is set when closing did not finish in time: the deferred
	// closes below must not wait for it either.
	abandoned := false
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, newBusLogger(logger))
	defer func() {
		if !abandoned {
			_ = bus.Close()
		}
	}()
	tr, err := newTracing(ctx, os.LookupEnv, readBuildInfo().Version, logger)
	if err != nil {
		return err
	}
	defer func() { // flushes on an early return; after a drain it is done already
		flushCtx, cancel := context.WithTimeout(context.Background(), minCloseBudget)
		defer cancel()
		_ = tr.shutdown(flushCtx)
	}()
	m := metrics.New()
	store, logStore, node, err := openServeStore(ctx, o.cluster, o.addr, eventstore.Options{Dir: o.dataDir, Logger: logger, Publisher: bus, CommitObserver: m.ObserveCommit, Signer: sig.signer,
		TracerProvider: tr.provider}, logger)
	if err != nil {
		return withCode(1, err)
	}
	defer func() {
		if !abandoned {
			node.Close() // cluster.go; after the store
		}
	}()
	defer func() {
		if !abandoned {
			_ = store.Close()
		}
	}()
	alerts := &tenantAlerts{o: o.alerts, file: alertFile, targets: webhooks, dataDir: o.dataDir,
		store: store, bus: bus, metrics: m, logger: logger}
	tc := tenancy.Config{Store: logStore, Logger: logger, OnOpen: alerts.start,
		Ledger: writeside.Config{Logger: logger, SnapshotEvery: o.snapshotEvery, RequireBoundKeys: o.requireBound}}
	if node != nil {
		tc.Cluster = node // cluster.go
	}
	reg, err := tenancy.Open(ctx, tc)
	if err != nil {
		return withCode(1, err)
	}
	defer func() {
		if !abandoned {
			_ = reg.Close()
		}
	}()
	for _, chain := range reg.Chains() {
		if err := checkAgainstCheckpoint(ctx, store, chain, sig.signer, logger); err != nil {
			return withCode(1, err)
		}
	}
	follows := false
	if node == nil {
		if err := upgradeToTenants(ctx, reg, stdout, resetHint(o.dataDir), logger); err != nil {
			return withCode(1, err)
		}
	} else if follows, err = node.startDeployment(ctx, reg, stdout, o.dataDir); err != nil { // cluster.go
		return withCode(1, err)
	}
	def, _ := reg.Tenant(tenants.DefaultID)
	ledger := def.Ledger
	if len(o.witnesses.witnesses) > 0 {
		if err := node.caughtUp(ctx, reg.Chains()); err != nil { // cluster.go
			return withCode(1, err)
		}
	}
	// Every tenant's chain, those created later too, and system; on a
	// cluster every node pushes the same checkpoints.
	witnesses, stopWitnesses, err := startWitnesses(ctx, o.witnesses, o.dataDir, store, sig.signer, reg.Chains, logger)
	if err != nil {
		return withCode(1, err)
	}
	defer stopWitnesses()
	var cosigned func(chain string) []byte
	if witnesses != nil {
		cosigned = witnesses.Cosigned
	}
	if err := m.Track(ledger, func() (uint64, error) {
		h, err := store.Head(eventstore.DefaultChain)
		return h.Seq, err
	}); err != nil {
		return err
	}
	if follows {
		o.policies, alertFile.Rules = "", nil
	}
	if o.policies != "" {
		events, err := ledger.SyncPolicies(ctx, desired)
		if err != nil {
			return fmt.Errorf("sync policies from %s: %w", o.policies, err)
		}
		logger.Info("policies synced", "path", o.policies, "policies", len(desired), "events_appended", len(events))
	}
	stopIndex, err := followHeads(reg, bus)
	if err != nil {
		return err
	}
	defer func() {
		if !abandoned {
			stopIndex()
		}
	}()
	api, err := httpapi.New(httpapi.Config{
		Tenants: reg,
		Verify: func(ctx context.Context, chain string) (verify.Report, error) {
			return verify.Store(ctx, store, chain)
		},
		Ready:       node.ready(store.Failed),
		Evidence:    store,
		VerifierKey: store.ChainVerifierKey,
		Cosigned:    cosigned,
		Logger:      logger,
		Metrics:     m,
		Limits:      o.limits,
		BackupDir:   backupDir,
		Alerts:      alerts.hooks(),
		// nil when tracing is off
		TracerProvider: tr.provider,
		TraceRequest:   tr.traceRequest,
		Cluster:        node.api(),
		Backup: func(_ context.Context, dir string) error {
			if err := store.Checkpoint(dir); err != nil {
				return err
			}
			logger.Info("backup written", "out", dir)
			return nil
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	if o.pprof {
		stopPprof, err := startPprof(o.pprofAddr, logger)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopPprof()
	}
	served := make(chan error, 1)
	go func() { served <- api.Serve(ln) }()
	head, _ := store.Head(eventstore.DefaultChain)
	if o.memorySet != nil {
		logger.Info("memory limit", o.memorySet...)
	}
	logger.Info("custos serving", "addr", ln.Addr().String(), "data", o.dataDir, "head_seq", head.Seq,
		"max_connections", o.limits.MaxConnections, "open_file_limit", fileLimit)

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := api.Shutdown(shutdownCtx); err != nil {
		logger.Warn("graceful shutdown incomplete", "err", err)
	}
	// A failed Pebble may never finish closing: bound it, so that SIGTERM
	// always ends the process.
	budget := max(time.Until(deadlineOf(shutdownCtx)), minCloseBudget)
	closed := make(chan error, 1)
	go func() {
		stopWitnesses()
		stopIndex()
		if err := reg.Close(); err != nil {
			logger.Warn("close ledgers", "err", err)
		}
		closed <- store.Close()
	}()
	var closeErr error
	select {
	case closeErr = <-closed:
	case <-time.After(budget):
		abandoned = true
		closeErr = fmt.Errorf("closing the store did not finish within %s; exiting without a clean close (a restart recovers from the log)", budget.Round(time.Millisecond))
	}
	if err := store.Failed(); err != nil {
		if closeErr != nil {
			logger.Warn("close store", "err", closeErr)
		}
		return fmt.Errorf("stopped after the store failed: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("close store: %w", closeErr)
	}
	// The last commits' spans ended as the store closed: flush them
	// within what is left of --shutdown-timeout.
	if err := tr.shutdown(shutdownCtx); err != nil {
		logger.Warn("flush traces", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// minCloseBudget is the least time shutdown gives the store to close after
// draining requests, even when draining used up --shutdown-timeout.
const minCloseBudget = 2 * time.Second

// deadlineOf returns ctx's deadline, or now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now()
}

// followHeads tells the registry's audit indexes of the durable heads the
// store publishes on bus, each its own chain's. The returned stop waits for
// it and is safe to call twice.
func followHeads(reg *tenancy.Registry, bus *gochannel.GoChannel) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	heads, err := bus.Subscribe(ctx, eventstore.DefaultHeadTopic)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to heads: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for msg := range heads {
			reg.Notify(msg.Metadata.Get("chain"))
			msg.Ack()
		}
	})
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }, nil
}

// serveSigning loads serve's checkpoint signing key. On a folder without a
// store it creates a missing key beside the folder and logs that loudly;
// an existing store without its key is refused. With --sign-existing it
// verifies the chain before allowing the store to sign it.
func serveSigning(ctx context.Context, o serveOptions, logger *slog.Logger) (signing, error) {
	path := o.keys.keyPath(o.dataDir)
	var signer *checkpoint.Signer
	var err error
	if storeExists(o.dataDir) {
		signer, err = loadSigningKey(path, o.dataDir)
		if errors.Is(err, errNoSigningKey) {
			err = fmt.Errorf("%w; a store that exists is never given a new key silently, since a new key would sign whatever the folder holds now", err)
		}
	} else {
		var created bool
		signer, created, err = loadOrCreateSigningKey(path, o.dataDir, o.keys.origin)
		if created {
			logger.Warn("CREATED A CHECKPOINT SIGNING KEY beside the data folder: back it up and keep it apart from the data folder and its backups (docs/runbook.md, \"Signing key\")",
				"signing_key", path, "verifier_key", signer.VerifierKey())
		}
	}
	if err != nil {
		return signing{}, err
	}
	if o.signExisting && storeExists(o.dataDir) {
		s, err := openReadOnly(o.dataDir, logger)
		if err != nil {
			return signing{}, err
		}
		report, err := verify.Store(ctx, s, eventstore.DefaultChain)
		_ = s.Close()
		if err != nil {
			return signing{}, err
		}
		if !report.Valid {
			return signing{}, fmt.Errorf("--sign-existing: the chain is broken (%s at seq %d: %s); not signing it", report.Detail.Kind, report.Detail.Seq, report.Detail.Message)
		}
	}
	return signing{signer: signer, signExisting: o.signExisting}, nil
}

// checkAgainstCheckpoint replays chain against its latest signed
// checkpoint (eventstore.Open has checked that it verifies and covers the
// head) under chain's key (signer.ForChain): the records must hash to its
// root.
func checkAgainstCheckpoint(ctx context.Context, store *eventstore.Store, chain string, signer *checkpoint.Signer, logger *slog.Logger) error {
	msg, err := store.SignedCheckpoint(ctx, chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		return nil // an empty chain: Open refuses records without one
	}
	if err != nil {
		return err
	}
	vkey, err := signer.VerifierKeyFor(chain)
	if err != nil {
		return err
	}
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return err
	}
	cp, err := v.Open(msg, chain)
	if err != nil {
		return fmt.Errorf("chain %s: latest checkpoint: %w", chain, err)
	}
	report, err := verify.Store(ctx, store, chain, verify.WithCheckpoint(cp))
	if err != nil {
		return fmt.Errorf("check the log against its checkpoint: %w", err)
	}
	if !report.Valid {
		return fmt.Errorf("%w: chain %s contradicts its signed checkpoint of size %d: %s at seq %d: %s", eventstore.ErrCheckpointMismatch, chain, cp.Size, report.Detail.Kind, report.Detail.Seq, report.Detail.Message)
	}
	logger.Info("log checked against its signed checkpoint", "chain", chain, "size", cp.Size, "origin", cp.Origin, "duration_ms", report.DurationMS)
	return nil
}
