package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/cmd/internal/alertfile"
	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/httpapi/metrics"
	"github.com/custos-dev/custos/projections/alerting"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
)

// errInvalidAlerts makes `alerts validate` exit 1 after listing problems.
var errInvalidAlerts = errors.New("alerts file is invalid")

func newAlertsCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{Use: "alerts", Short: "Work with alerts files"}
	parent.AddCommand(&cobra.Command{
		Use:   "validate PATH",
		Short: "Check an alerts file without a server",
		Long: `validate reads PATH as custos serve --alerts would and lists every problem at
once on stderr, as file:line: rules[i].field: problem.

Exit codes: 0 valid, 1 there are problems, 2 PATH cannot be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := alertfile.Load(args[0])
			if err != nil {
				var problem *alertfile.Problem
				if !errors.As(err, &problem) {
					return err
				}
				for _, line := range problemLines(err) {
					fmt.Fprintln(stderr, line)
				}
				return withCode(1, errInvalidAlerts)
			}
			fmt.Fprintf(stdout, "%d rules and %d webhooks valid in %s\n", len(f.Rules), len(f.Webhooks), args[0])
			return nil
		},
	})
	return parent
}

// alertOptions are serve's alert flags.
type alertOptions struct {
	file          string
	webhooks      []string
	webhookSecret string
	verifyEvery   time.Duration
}

func addAlertFlags(cmd *cobra.Command, o *alertOptions) {
	f := cmd.Flags()
	f.StringVar(&o.file, "alerts", "", "alerts file (rules and webhooks) to load at start; only rule differences are appended")
	f.StringArrayVar(&o.webhooks, "webhook", nil, "URL to POST every alert to (repeatable); signed with --webhook-secret")
	f.StringVar(&o.webhookSecret, "webhook-secret", "", "secret signing --webhook deliveries (prefer CUSTOS_WEBHOOK_SECRET: flags show in ps)")
	f.DurationVar(&o.verifyEvery, "verify-every", alerting.DefaultVerifyEvery, "interval of the server's full verify of its chain (each new record is also verified once); negative disables the full pass")
}

// loadAlerts reads the alerts file (if any) and the webhook targets of
// flags and file.
func loadAlerts(o alertOptions) (alertfile.File, []webhook.Target, error) {
	var f alertfile.File
	if o.file != "" {
		var err error
		if f, err = alertfile.Load(o.file); err != nil {
			return f, nil, fmt.Errorf("--alerts %s:\n%s", o.file, strings.Join(problemLines(err), "\n"))
		}
	}
	var targets []webhook.Target
	for _, u := range o.webhooks {
		targets = append(targets, webhook.Target{URL: u, Secret: o.webhookSecret})
	}
	for _, w := range f.Webhooks {
		t := webhook.Target{URL: w.URL}
		if w.SecretEnv != "" {
			if t.Secret = os.Getenv(w.SecretEnv); t.Secret == "" {
				return f, nil, fmt.Errorf("--alerts %s: webhook %s: environment variable %s is empty or unset", o.file, w.URL, w.SecretEnv)
			}
		}
		targets = append(targets, t)
	}
	if err := (webhook.Config{Targets: targets}).Validate(); err != nil {
		return f, nil, err
	}
	return f, targets, nil
}

// runAlerts sets the file's rules, starts webhook delivery and the engine
// (woken by the durable heads on bus) and returns the hooks for the API
// and a stop that waits for both; stop is safe to call twice and must run
// before the Ledger closes. The dead-letter list is kept in
// deadLetterFile (deadLetterPath of the data folder).
// tenantAlerts runs one alerts engine per tenant (tenancy.Config.OnOpen):
// every engine verifies its tenant's chain and counts its rules, and
// delivers to the deployment's webhooks (flags and file). The rules of the
// file, the verify metrics and the invalid-key counting (a key that names
// no tenant) are tenant default's; every tenant keeps its own dead-letter
// file in the data folder.
type tenantAlerts struct {
	o       alertOptions
	file    alertfile.File
	targets []webhook.Target
	dataDir string
	store   *eventstore.Store
	bus     *gochannel.GoChannel
	metrics *metrics.Metrics
	logger  *slog.Logger

	mu    sync.Mutex
	byTen map[string]httpapi.AlertHooks
}

// start runs tenant t's engine; the stop it returns waits for it.
func (a *tenantAlerts) start(ctx context.Context, t *tenancy.Tenant) (func(), error) {
	f, m, deadLetters := alertfile.File{}, (*metrics.Metrics)(nil), filepath.Join(a.dataDir, "alerts-dead-letters."+t.ID+".json")
	if t.ID == tenants.DefaultID {
		f, m, deadLetters = a.file, a.metrics, deadLetterPath(a.dataDir)
	}
	hooks, stop, err := runAlerts(ctx, a.o, f, a.targets, deadLetters, t.ID, t.Ledger, a.store, a.bus, m, a.logger.With("tenant", t.ID))
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byTen == nil {
		a.byTen = map[string]httpapi.AlertHooks{}
	}
	a.byTen[t.ID] = hooks
	return stop, nil
}

func (a *tenantAlerts) of(tenant string) httpapi.AlertHooks {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byTen[tenant]
}

// hooks connects the API to every tenant's engine.
func (a *tenantAlerts) hooks() httpapi.AlertHooks {
	return httpapi.AlertHooks{
		InvalidKey: func(prefix, remote string) {
			if h := a.of(tenants.DefaultID); h.InvalidKey != nil {
				h.InvalidKey(prefix, remote)
			}
		},
		DeadLetters: func(tenant string) []webhook.DeadLetter {
			if h := a.of(tenant); h.DeadLetters != nil {
				return h.DeadLetters(tenant)
			}
			return nil
		},
	}
}

func runAlerts(ctx context.Context, o alertOptions, f alertfile.File, targets []webhook.Target, deadLetterFile string,
	chain string, ledger *writeside.Ledger, store *eventstore.Store, bus *gochannel.GoChannel, m *metrics.Metrics, logger *slog.Logger,
) (httpapi.AlertHooks, func(), error) {
	changed := 0
	for _, r := range f.Rules {
		c, err := ledger.SetAlertRule(ctx, writeside.ActorAlertSync, r)
		if err != nil {
			return httpapi.AlertHooks{}, nil, fmt.Errorf("set alert rule %s from %s: %w", r.RuleID, o.file, err)
		}
		if c {
			changed++
		}
	}
	if o.file != "" && len(f.Rules) > 0 {
		logger.Info("alert rules synced", "path", o.file, "rules", len(f.Rules), "events_appended", changed)
	}
	sender, err := webhook.New(webhook.Config{Targets: targets, Logger: logger, DeadLetterFile: deadLetterFile})
	if err != nil {
		return httpapi.AlertHooks{}, nil, err
	}
	verifyEvery := o.verifyEvery
	if verifyEvery < 0 {
		verifyEvery = alerting.NoFullVerify
	}
	engine, err := alerting.New(alerting.Config{
		Ledger: ledger, Log: store, Chain: chain, Logger: logger, VerifyEvery: verifyEvery,
		Deliver: func(a alerting.Alert) {
			body, err := json.Marshal(a)
			if err != nil {
				logger.Error("encode alert", "err", err)
				return
			}
			sender.Send(a.AlertID, body)
		},
	})
	if err != nil {
		_ = sender.Close()
		return httpapi.AlertHooks{}, nil, err
	}
	if m != nil {
		if err := m.TrackVerify(engine.Status); err != nil {
			_ = sender.Close()
			return httpapi.AlertHooks{}, nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	heads, err := bus.Subscribe(runCtx, eventstore.DefaultHeadTopic)
	if err != nil {
		cancel()
		_ = sender.Close()
		return httpapi.AlertHooks{}, nil, fmt.Errorf("subscribe to heads: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for msg := range heads {
			if msg.Metadata.Get("chain") == chain {
				engine.Notify()
			}
			msg.Ack()
		}
	})
	wg.Go(func() {
		if err := engine.Run(runCtx); err != nil {
			logger.Error("alerts engine stopped", "err", err)
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			_ = sender.Close()
		})
	}
	deadLetters := func(string) []webhook.DeadLetter { return sender.DeadLetters() }
	return httpapi.AlertHooks{InvalidKey: engine.InvalidKey, DeadLetters: deadLetters}, stop, nil
}

// deadLetterPath is where serve keeps the webhook dead-letter list: a file
// in the data folder (Pebble ignores it), so that it moves with the folder
// and survives restarts. Backups leave it out: it is not on the chain.
func deadLetterPath(dataDir string) string {
	return filepath.Join(dataDir, "alerts-dead-letters.json")
}
