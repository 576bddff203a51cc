package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/projections/tenancy"
	"github.com/custos-dev/custos/projections/writeside"
)

// upgradeToTenants makes a folder a deployment of tenants: tenant default
// (a new folder's, or the one chain of a folder written before tenants)
// on the system chain, and, once per deployment, a superadmin key printed
// on stdout.
func upgradeToTenants(ctx context.Context, reg *tenancy.Registry, stdout io.Writer, lostHint string, logger *slog.Logger) error {
	created, err := reg.EnsureDefault(ctx)
	if err != nil {
		return err
	}
	if created {
		logger.Info("tenant default recorded on the system chain: this folder's chain default is that tenant")
	}
	if reg.HasSuperadminKey() {
		return nil
	}
	key, rec, err := reg.CreateSuperadminKey(ctx, writeside.ActorInit, "bootstrap-superadmin")
	if err != nil {
		return fmt.Errorf("create the superadmin key: %w", err)
	}
	printSuperadminKey(stdout, key, rec, lostHint)
	return nil
}

// resetHint is the superadmin key block's last line on a single node.
func resetHint(dataDir string) string { return "custos superadmin-key reset --data " + dataDir }

// clusterHint is that line on a cluster, where an offline reset would fork
// the node's copy from the stream.
const clusterHint = "a cluster has no offline reset; keep it safe (docs/cluster.md)"

func printSuperadminKey(w io.Writer, key string, rec keys.KeyCreated, lostHint string) {
	fmt.Fprintf(w, `
================= custos: deployment superadmin key =================
%s
Copy it now: this is the only time it is shown. Scope superadmin:
it creates, lists, suspends and resumes tenants, mints a tenant's
admin keys and verifies or exports any tenant (the /v1/tenants
routes); it cannot evaluate or act inside a tenant. key_id
%s, expires %s (%d days).
Lost it? %s
=====================================================================

`, key, rec.KeyID, rec.ExpiresAt.UTC().Format(time.RFC3339),
		int(rec.ExpiresAt.Sub(rec.CreatedAt).Round(24*time.Hour).Hours()/24), lostHint)
}

func newSuperadminKeyCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "superadmin-key",
		Short: "Recover deployment superadmin access",
	}
	var dataDir string
	var keyFlags signingKeyFlags
	var cluster clusterFlags
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Create a new superadmin key offline",
		Long: `reset opens the store (stop the server first), appends a key.created for a new
superadmin key to the system chain with actor system:reset, and prints the key
on stdout. Existing keys stay as they are.

On a cluster (docs/cluster.md) a node's folder is a copy of the stream and
is refused. Stop every node, then run reset with --nats (and the node
flags serve uses; --data is a folder for this one-off node, refilled from
the stream): it joins the cluster, takes the system chain's lease, appends
the key to the stream and leaves. It fails while a node serves.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(stderr, slog.LevelWarn)
			if cluster.enabled() { // cluster.go
				signer, err := loadSigningKey(keyFlags.keyPath(dataDir), dataDir)
				if err != nil {
					return err
				}
				key, err := resetClusterSuperadmin(cmd.Context(), cluster, dataDir, signing{signer: signer}, logger)
				if err != nil {
					return fmt.Errorf("superadmin-key reset: %w", err)
				}
				fmt.Fprintln(stdout, key)
				return nil
			}
			s, err := openForReset(dataDir, keyFlags, logger)
			if err != nil {
				return err
			}
			defer s.Close()
			reg, err := tenancy.Open(cmd.Context(), tenancy.Config{Store: s, Logger: logger, Ledger: writeside.Config{Logger: logger}})
			if err != nil {
				return err
			}
			defer reg.Close()
			if _, err := reg.EnsureDefault(cmd.Context()); err != nil {
				return err
			}
			key, _, err := reg.CreateSuperadminKey(cmd.Context(), writeside.ActorReset, "reset-superadmin")
			if err != nil {
				return err
			}
			if err := errors.Join(reg.Close(), s.Close()); err != nil {
				return err
			}
			fmt.Fprintln(stdout, key)
			return nil
		},
	}
	reset.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	addSigningKeyFlags(reset, &keyFlags, false)
	addClusterFlags(reset, &cluster)
	parent.AddCommand(reset)
	return parent
}
