package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
)

func newVkeyCommand(stdout io.Writer) *cobra.Command {
	var dataDir, tenant string
	var keyFlags signingKeyFlags
	cmd := &cobra.Command{
		Use:   "vkey",
		Short: "Print the checkpoint verifier key of a tenant, offline",
		Long: `vkey reads the checkpoint signing key (--signing-key, default DATA.signing-key)
and prints on stdout the verifier key of --tenant's checkpoints, one line: the
deployment key's for tenant default (what init printed), the tenant's own for
any other, derived from the signing key (docs/proofs.md, "Chain keys"). Give it
to that tenant's auditors. It needs the signing key, not the store, so it runs
beside a running server; it does not check that the tenant exists.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := tenants.ParseID(tenant); err != nil {
				return fmt.Errorf("--tenant: %w", err)
			}
			signer, err := loadSigningKey(keyFlags.keyPath(dataDir), dataDir)
			if err != nil {
				return err
			}
			vkey, err := signer.VerifierKeyFor(tenant)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store (locates the default signing key)")
	cmd.Flags().StringVar(&tenant, "tenant", eventstore.DefaultChain, "tenant whose verifier key to print")
	addSigningKeyFlags(cmd, &keyFlags, false)
	return cmd
}
