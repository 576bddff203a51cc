package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/domain/keys"
)

func newInitCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, vkeyOut string
	var keyFlags signingKeyFlags
	var cluster clusterFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a store, its first admin key and its checkpoint signing key",
		Long: `init creates a new store in --data and a first admin key, and prints only that
key on stdout, so that KEY=$(custos init --data DIR) works. The key is shown
once; the store keeps only its SHA-256.

It also creates the checkpoint signing key at --signing-key (default
DATA.signing-key, beside the data folder, never inside it), named --origin,
unless that file already holds a key, and writes the matching verifier key
to stderr, or to --vkey-out FILE. Every commit of the log is covered by a
checkpoint signed with it; give auditors the verifier key and keep the
signing key apart from the data folder (docs/runbook.md, "Signing key").

On a folder that already holds a store with events, init changes nothing and
exits 1.

With --nats (or --nats-embedded) it initialises a cluster instead
(docs/cluster.md): it joins it with a node on --data, takes the lease of the
chain and, if the chain is empty, creates the first admin key in the
stream. A chain with events exits 1; a chain that a running node sequences
is refused. Give every node the signing key it created or used.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			privateFiles()
			path := keyFlags.keyPath(dataDir)
			signer, created, err := loadOrCreateSigningKey(path, dataDir, keyFlags.origin)
			if err != nil {
				return err
			}
			bootstrapFn := bootstrap
			if cluster.enabled() { // cluster.go
				bootstrapFn = func(ctx context.Context, dir string, sig signing, logger *slog.Logger) (string, keys.KeyCreated, error) {
					return bootstrapCluster(ctx, cluster, dir, sig, logger)
				}
			}
			key, _, err := bootstrapFn(cmd.Context(), dataDir, signing{signer: signer}, newLogger(stderr, slog.LevelWarn))
			if err != nil && created {
				_ = os.Remove(path)
			}
			if errors.Is(err, errAlreadyInitialised) {
				return withCode(1, err)
			}
			if err != nil {
				return err
			}
			if err := writeVerifierKey(signer.VerifierKey(), vkeyOut, stderr); err != nil {
				return err
			}
			fmt.Fprintln(stdout, key)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&vkeyOut, "vkey-out", "", "write the checkpoint verifier key to FILE instead of stderr")
	addSigningKeyFlags(cmd, &keyFlags, true)
	addClusterFlags(cmd, &cluster)
	return cmd
}
