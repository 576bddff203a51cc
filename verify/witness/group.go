package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// GroupConfig configures a Group: the Pusher of every chain shares it.
type GroupConfig struct {
	Log Log
	// Signer is the deployment signing key. The Group derives each chain's
	// verifier key from it (checkpoint.Signer.VerifierKeyFor) and
	// countersigns the checkpoints of chains signed by a derived key with
	// it (PusherConfig.Countersigner), so that witnesses following the
	// deployment verifier key cosign every chain.
	Signer *checkpoint.Signer
	// Chains lists the chains to push. The Group calls it at Start and
	// then every Interval, so that a chain that appears later (a tenant
	// created while serving) is pushed from then on. It must be safe to
	// call from another goroutine.
	Chains func() []string
	// StatePath returns the file that keeps chain's latest cosigned
	// checkpoint (PusherConfig.StatePath). Each chain needs its own.
	StatePath func(chain string) string
	// Witnesses, Quorum, Interval, Timeout, Client and Logger are those of
	// every chain's Pusher (PusherConfig).
	Witnesses []Endpoint
	Quorum    int
	Interval  time.Duration
	Timeout   time.Duration
	Client    *http.Client
	Logger    *slog.Logger
}

// startCheckers bounds how many chains Start checks at once.
const startCheckers = 8

// Group pushes the checkpoints of many chains (every tenant's and the
// system chain) to the same witnesses: one Pusher per chain, each in a
// goroutine of its own that pushes every Interval, and only to witnesses
// that have not cosigned the chain's latest checkpoint, so that a quiet
// chain costs one checkpoint read per Interval. Safe for concurrent use.
type Group struct {
	cfg GroupConfig

	mu      sync.Mutex
	pushers map[string]*Pusher // chains being pushed
	refused map[string]bool    // chains found inconsistent after Start: not pushed
	started bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// NewGroup checks the configuration; nothing is read or pushed before
// Start.
func NewGroup(cfg GroupConfig) (*Group, error) {
	if cfg.Log == nil || cfg.Signer == nil || cfg.Chains == nil || cfg.StatePath == nil {
		return nil, errors.New("witness: group: Log, Signer, Chains and StatePath are required")
	}
	g := &Group{cfg: cfg, pushers: map[string]*Pusher{}, refused: map[string]bool{}}
	// The shared fields are checked as a Pusher checks them.
	if _, err := g.newPusher("default"); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Group) newPusher(chain string) (*Pusher, error) {
	vkey, err := g.cfg.Signer.VerifierKeyFor(chain)
	if err != nil {
		return nil, fmt.Errorf("witness: chain %s: %w", chain, err)
	}
	p, err := NewPusher(PusherConfig{Log: g.cfg.Log, Chain: chain, LogVkey: vkey, Countersigner: g.cfg.Signer,
		Witnesses: g.cfg.Witnesses, Quorum: g.cfg.Quorum, Interval: g.cfg.Interval, Timeout: g.cfg.Timeout,
		StatePath: g.cfg.StatePath(chain), Client: g.cfg.Client, Logger: g.cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", chain, err)
	}
	return p, nil
}

// Start checks every chain of Chains against its kept cosigned checkpoint
// (Pusher.CheckLog) and against the witnesses (Pusher.CheckWitnesses),
// several chains at a time (a witness that does not answer for one chain
// is not asked for the chains checked after it), and, when all pass,
// pushes them in the
// background until Close. The error joins one error per failing chain,
// each starting "chain NAME: " and matching ErrInconsistent or
// ErrKeyRefused as the Pusher's do. Chains that appear after Start are
// checked against their kept checkpoint alone (the witnesses' own check is
// their answer to the first push, logged); one that fails is logged at
// error level and not pushed, and the next Start fails on it. Call Start
// once.
func (g *Group) Start(ctx context.Context) error {
	chains := g.cfg.Chains()
	pushers := make([]*Pusher, len(chains))
	errs := make([]error, len(chains))
	sem := make(chan struct{}, startCheckers)
	// A witness that did not answer for one chain is not asked for the
	// others: a witness that is down delays the start by one timeout, not
	// one per chain.
	var downMu sync.Mutex
	down := map[string]bool{}
	skip := func(url string) bool {
		downMu.Lock()
		defer downMu.Unlock()
		return down[url]
	}
	var wg sync.WaitGroup
	for i, chain := range chains {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := g.newPusher(chain)
			if err == nil {
				err = p.CheckLog(ctx)
			}
			if err == nil {
				var unreachable []string
				unreachable, err = p.checkWitnesses(ctx, skip)
				downMu.Lock()
				for _, url := range unreachable {
					down[url] = true
				}
				downMu.Unlock()
			}
			if err != nil {
				errs[i] = fmt.Errorf("chain %s: %w", chain, err)
				return
			}
			pushers[i] = p
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		cancel()
		return errors.New("witness: group started twice")
	}
	g.started, g.stop = true, cancel
	for i, chain := range chains {
		g.runLocked(runCtx, chain, pushers[i])
	}
	g.wg.Go(func() { g.discover(runCtx) })
	return nil
}

// runLocked starts pushing chain with p. The caller holds mu.
func (g *Group) runLocked(ctx context.Context, chain string, p *Pusher) {
	if _, ok := g.pushers[chain]; ok {
		return
	}
	g.pushers[chain] = p
	g.wg.Go(func() { p.Run(ctx) })
}

// discover adds the chains that appear in Chains, every Interval.
func (g *Group) discover(ctx context.Context) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, chain := range g.cfg.Chains() {
			g.mu.Lock()
			_, known := g.pushers[chain]
			known = known || g.refused[chain]
			g.mu.Unlock()
			if !known {
				g.add(ctx, chain)
			}
		}
	}
}

// add checks a chain that appeared after Start against its kept cosigned
// checkpoint and pushes it, or logs why not.
func (g *Group) add(ctx context.Context, chain string) {
	p, err := g.newPusher(chain)
	if err == nil {
		err = p.CheckLog(ctx)
	}
	if ctx.Err() != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.refused[chain] = true
		g.cfg.Logger.Error("CHAIN NOT PUSHED TO WITNESSES: it contradicts its kept cosigned checkpoint; the next start refuses to serve", "chain", chain, "err", err)
		return
	}
	g.runLocked(ctx, chain, p)
	g.cfg.Logger.Info("pushing a new chain's checkpoints to witnesses", "chain", chain, "cosigned", g.cfg.StatePath(chain))
}

// Cosigned returns chain's latest checkpoint that a quorum of witnesses
// cosigned, with their cosignature lines, or nil (none yet, or a chain not
// pushed).
func (g *Group) Cosigned(chain string) []byte {
	g.mu.Lock()
	p := g.pushers[chain]
	g.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Cosigned()
}

// Close stops pushing and waits for the pushers' goroutines. Safe to call
// twice, and without Start.
func (g *Group) Close() {
	g.once.Do(func() {
		g.mu.Lock()
		stop := g.stop
		g.mu.Unlock()
		if stop != nil {
			stop()
		}
		g.wg.Wait()
	})
}
