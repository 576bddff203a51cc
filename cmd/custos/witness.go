package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/verify/witness"
)

func newWitnessCommand(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness that cosigns custos checkpoints",
	}
	cmd.AddCommand(newWitnessServeCommand(stderr))
	return cmd
}

type witnessServeOptions struct {
	addr, state, key, name, vkeyOut string
	logs                            []string
}

func newWitnessServeCommand(stderr io.Writer) *cobra.Command {
	var o witnessServeOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve POST /add-checkpoint (C2SP tlog-witness) for the logs of --log",
		Long: `witness serve is the witness an auditor runs on a machine of their own. It
follows the logs whose verifier keys are given with --log (the key custos
init wrote; a key named NAME covers origins NAME/CHAIN, so the deployment
key covers every tenant's chain: serve adds that key's signature to the
tenant checkpoints it pushes) and answers
POST /add-checkpoint as C2SP tlog-witness says: the body is "old SIZE", the
consistency proof lines, an empty line and the signed checkpoint. It checks
the log's signature (403 if none verifies, 404 for an unknown origin), that
SIZE is the size it cosigned last (409 with its size as text/x.tlog.size
otherwise), and the consistency proof from that checkpoint (422 if it does
not verify; the same size with another root is 409). It then writes the new
checkpoint to --state (fsynced, replaced atomically) before it answers
with its cosignature/v1 line, timestamped.

A checkpoint inconsistent with one it cosigned is refused and logged at
error level with both roots: that line is the evidence of a rewritten,
truncated or forked log.

The witness signing key is read from --key; a missing file is created (0600,
named --name) and its verifier key is written to stderr, or to --vkey-out.
Give that verifier key to custos serve --witness URL=VKEY and to auditors
(custos verify --witness-vkey).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return witnessServe(ctx, o, stderr, newLogger(stderr, slog.LevelInfo))
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8090", "HOST:PORT to listen on")
	cmd.Flags().StringVar(&o.state, "state", "./custos-witness.state", "file holding the latest cosigned checkpoint of each log")
	cmd.Flags().StringVar(&o.key, "key", "./custos-witness.key", "witness signing key file; created when missing")
	cmd.Flags().StringVar(&o.name, "name", "", "name of a new witness key (e.g. witness.auditor.example/w1); default witness.example/HOSTNAME")
	cmd.Flags().StringVar(&o.vkeyOut, "vkey-out", "", "write the witness verifier key to FILE instead of stderr")
	cmd.Flags().StringArrayVar(&o.logs, "log", nil, "verifier key of a log to witness (NAME+hash+key, or a file holding it); repeatable, at least one")
	return cmd
}

func witnessServe(ctx context.Context, o witnessServeOptions, stderr io.Writer, logger *slog.Logger) error {
	cosigner, err := loadOrCreateWitnessKey(o.key, o.name, o.vkeyOut, stderr)
	if err != nil {
		return withCode(1, err)
	}
	var logs []string
	for _, l := range o.logs {
		k, err := keyOrFile(l)
		if err != nil {
			return withCode(1, fmt.Errorf("--log: %w", err))
		}
		logs = append(logs, k)
	}
	w, err := witness.New(witness.Config{StatePath: o.state, Logs: logs, Cosigner: cosigner, Logger: logger})
	if err != nil {
		return withCode(1, err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return withCode(1, fmt.Errorf("listen on %s: %w", o.addr, err))
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("custos witness serving", "addr", ln.Addr().String(), "state", o.state, "witness_vkey", cosigner.VerifierKey(), "logs", len(logs))
	select {
	case err := <-served:
		return fmt.Errorf("witness http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// loadOrCreateWitnessKey reads the witness key at path, or creates it.
func loadOrCreateWitnessKey(path, name, vkeyOut string, stderr io.Writer) (*witness.Cosigner, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		c, err := witness.NewCosigner(string(b), time.Now)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", path, err)
		}
		return c, writeWitnessVkey(c.VerifierKey(), vkeyOut, stderr)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--key: %w", err)
	}
	if name == "" {
		name = "witness.example/" + strings.TrimPrefix(defaultOrigin(), "custos.example/")
	}
	skey, _, err := witness.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create witness key: %w", err)
	}
	_, err = io.WriteString(f, skey+"\n")
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("write witness key: %w", err)
	}
	c, err := witness.NewCosigner(skey, time.Now)
	if err != nil {
		return nil, err
	}
	return c, writeWitnessVkey(c.VerifierKey(), vkeyOut, stderr)
}

func writeWitnessVkey(vkey, out string, stderr io.Writer) error {
	return writeKeyLine(vkey, out, stderr, "witness verifier key (give it to custos serve --witness and to auditors)")
}

// keyOrFile returns the content of the file s when there is one, else s
// itself, a key.
func keyOrFile(s string) (string, error) {
	b, err := os.ReadFile(s)
	switch {
	case err == nil:
		return strings.TrimSpace(string(b)), nil
	case errors.Is(err, fs.ErrNotExist) && strings.Count(s, "+") >= 2:
		return strings.TrimSpace(s), nil
	default:
		return "", fmt.Errorf("%q is neither a key (NAME+hash+key) nor a readable file: %w", s, err)
	}
}

// witnessFlags are serve's witness flags.
type witnessFlags struct {
	witnesses []string // URL=VKEY
	quorum    int      // 0: all of them
	interval  time.Duration
	timeout   time.Duration
	cosigned  string // chain default's file, others' derived (cosignedPath); "" means DATA.cosigned
}

func addWitnessFlags(cmd *cobra.Command, w *witnessFlags) {
	cmd.Flags().StringArrayVar(&w.witnesses, "witness", nil, "witness to push checkpoints to, as URL=VKEY (its URL prefix and cosignature verifier key, or a file holding it); repeatable")
	cmd.Flags().IntVar(&w.quorum, "witness-quorum", 0, "how many witnesses must cosign a checkpoint before it is served as cosigned; 0: all of them")
	cmd.Flags().DurationVar(&w.interval, "witness-interval", time.Second, "how often each chain's latest checkpoint is pushed to the witnesses while it changes (and new tenants' chains are looked for)")
	cmd.Flags().DurationVar(&w.timeout, "witness-timeout", 5*time.Second, "how long one push to a witness may take")
	cmd.Flags().StringVar(&w.cosigned, "cosigned", "", "file keeping chain default's latest checkpoint a quorum cosigned; each other chain's (tenants, system) is FILE.<chain>; default DATA.cosigned beside the data folder")
}

// defaultCosigned is where serve keeps the latest cosigned checkpoint of
// chain default when --cosigned is not given: DATA.cosigned, beside the
// data folder.
func defaultCosigned(dataDir string) string {
	return strings.TrimSuffix(defaultSigningKey(dataDir), ".signing-key") + ".cosigned"
}

// cosignedPath is the file that keeps chain's latest cosigned checkpoint,
// given base, the default chain's (--cosigned, default DATA.cosigned):
// base itself for chain default (the one file of deployments from before
// tenants were witnessed), base.<chain> for every other chain (tenant ids
// and "system" hold no '.' or '/').
func cosignedPath(base, chain string) string {
	if chain == eventstore.DefaultChain {
		return base
	}
	return base + "." + chain
}

// startWitnesses checks every chain that chains lists against its kept
// cosigned checkpoint and against the witnesses, then pushes them in the
// background, and the chains that chains lists later as they appear
// (witness.Group). It returns nil and a no-op stop without witnesses;
// stop waits for the pushers and is safe to call twice.
func startWitnesses(ctx context.Context, w witnessFlags, dataDir string, store *eventstore.Store, signer *checkpoint.Signer, chains func() []string, logger *slog.Logger) (g *witness.Group, stop func(), err error) {
	if len(w.witnesses) == 0 {
		if w.quorum != 0 {
			return nil, nil, errors.New("--witness-quorum needs --witness")
		}
		return nil, func() {}, nil
	}
	var eps []witness.Endpoint
	for _, s := range w.witnesses {
		url, vkey, ok := strings.Cut(s, "=")
		if !ok || url == "" || vkey == "" {
			return nil, nil, fmt.Errorf("--witness %q: want URL=VKEY", s)
		}
		k, err := keyOrFile(vkey)
		if err != nil {
			return nil, nil, fmt.Errorf("--witness %s: %w", url, err)
		}
		eps = append(eps, witness.Endpoint{URL: url, Vkey: k})
	}
	quorum := w.quorum
	if quorum == 0 {
		quorum = len(eps)
	}
	base := w.cosigned
	if base == "" {
		base = defaultCosigned(dataDir)
	}
	g, err = witness.NewGroup(witness.GroupConfig{Log: store, Signer: signer, Chains: chains,
		StatePath: func(chain string) string { return cosignedPath(base, chain) },
		Witnesses: eps, Quorum: quorum, Interval: w.interval, Timeout: w.timeout, Client: &http.Client{}, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	if err := g.Start(ctx); err != nil {
		return nil, nil, err
	}
	logger.Info("pushing checkpoints to witnesses", "witnesses", len(eps), "quorum", quorum, "interval", w.interval,
		"chains", len(chains()), "cosigned", base, "cosigned_others", cosignedPath(base, "<chain>"))
	return g, g.Close, nil
}
