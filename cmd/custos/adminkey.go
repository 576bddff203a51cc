package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

func newAdminKeyCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "admin-key",
		Short: "Recover administrator access",
	}
	var dataDir string
	var keyFlags signingKeyFlags
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Create a new admin key offline when every admin key is lost",
		Long: `reset opens the store (stop the server first), appends a key.created for a new
admin key with actor system:reset, and prints the key on stdout. Existing keys
stay as they are: revoke lost ones with the new key.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(stderr, slog.LevelWarn)
			s, err := openForReset(dataDir, keyFlags, logger)
			if err != nil {
				return err
			}
			defer s.Close()
			ledger, err := writeside.Open(cmd.Context(), writeside.Config{Store: s, Logger: logger})
			if err != nil {
				return err
			}
			defer ledger.Close()
			key, _, err := createAdminKey(cmd.Context(), ledger, writeside.ActorReset, "reset-admin")
			if err != nil {
				return err
			}
			if err := errors.Join(ledger.Close(), s.Close()); err != nil {
				return err
			}
			fmt.Fprintln(stdout, key)
			return nil
		},
	}
	reset.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	addSigningKeyFlags(reset, &keyFlags, false)
	parent.AddCommand(reset)
	return parent
}

// openForReset opens the existing store in dir for an offline reset, with
// its signing key (so the appended key is covered by a checkpoint).
func openForReset(dir string, keyFlags signingKeyFlags, logger *slog.Logger) (*eventstore.Store, error) {
	if !storeExists(dir) {
		return nil, fmt.Errorf("no custos store in %s (run `custos init --data %s` or `custos serve --data %s` first)", dir, dir, dir)
	}
	if _, err := os.Stat(clusterMarker(dir)); err == nil {
		return nil, fmt.Errorf("%s is a cluster node's copy of the log (%s): an offline reset would fork it from the stream; "+
			"mint an admin key with the superadmin key (POST /v1/tenants/{id}/admin-keys), or reset the superadmin key with "+
			"`custos superadmin-key reset --nats URL` while no node serves (docs/cluster.md)", dir, clusterMarker(dir))
	}
	signer, err := loadSigningKey(keyFlags.keyPath(dir), dir)
	if err != nil {
		return nil, err
	}
	return openStore(dir, false, signing{signer: signer}, logger)
}
