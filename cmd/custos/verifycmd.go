package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/verify"
	"github.com/custos-dev/custos/verify/witness"
)

// errChainBroken makes verify exit 1 after printing its report.
var errChainBroken = errors.New("chain is broken")

func newVerifyCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, chain, exportFile, cpFile, vkey, receiptFile string
	var witnessVkeys []string
	var witnessQuorum int
	var keyFlags signingKeyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Replay the hash chain from genesis and report the first broken event",
		Long: `verify checks a hash chain and prints the report as JSON on stdout.

With --data DIR it opens the data folder read-only (stop the server first),
replays the chain from genesis, and checks every hash, link and sequence
number and the stored head. With --export FILE it checks a JSONL export
(docs/export-format.md) offline with no database; a range that does not start
at genesis is checked from its first prev_hash, which the report names as the
anchor. A malformed line is reported as broken at that line. With --export,
--chain (when given) is the chain the file must hold: a record of another
chain is chain_mismatch; without it the chain is the first line's. The
report's "chain" names the chain checked either way.

With --checkpoint FILE (a signed checkpoint, e.g. saved from GET
/v1/audit/checkpoint) and --vkey KEY (the verifier key, or a file holding
it), verify also checks the signature and that the log contains the
checkpointed tree (the root recomputed from the records) and extends it: a
truncation below its size is checkpoint_truncated, a rewrite before its
size (even with every later hash recomputed) or a forked root is
checkpoint_mismatch, and the report's "checkpoint" section says what was
compared. Each tenant's chain has its own verifier key (GET /v1/audit/vkey
with that tenant's key, or custos vkey --tenant); with --data and no --vkey,
verify derives --chain's key from the signing key (--signing-key, default
DATA.signing-key), as an operator holding it would. A checkpoint that does not verify under the key stops verify
(exit 2). Cosignatures of witnesses in the checkpoint are accepted; with
--witness-vkey KEY (repeatable) they are required: at least
--witness-quorum of those keys (default all) must have cosigned it, else
verify stops (exit 2) naming how many did.

With --receipt FILE --vkey KEY it checks a decision receipt instead (C2SP
tlog-proof, from GET /v1/audit/events/{event_id}/receipt; docs/proofs.md)
offline: the checkpoint's signature and origin (KEYNAME/CHAIN), the record
in its extra data at its index, and the inclusion of SHA-256(0x00||record)
in the signed tree. It prints {"valid", "receipt"} with the record's
envelope and payload, or {"valid": false, "problem"}; a receipt that fails
any check (its signature included) exits 1.

Exit codes: 0 the chain (or receipt) is valid, 1 the chain is broken (the
report names the first broken event) or the receipt is rejected, 2 verify
could not run (reason on stderr).`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if receiptFile != "" {
				for _, f := range []string{"data", "export", "checkpoint", "chain"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--receipt takes --vkey only, not --%s", f)
					}
				}
				return verifyReceiptFile(receiptFile, vkey, stdout)
			}
			var report verify.Report
			var opts []verify.Option
			if cpFile != "" && vkey == "" && exportFile == "" {
				// The operator's case: the chain's key from the signing key.
				signer, err := loadSigningKey(keyFlags.keyPath(dataDir), dataDir)
				if err != nil {
					return fmt.Errorf("--checkpoint needs --vkey, or the signing key to derive chain %s's: %w", chain, err)
				}
				if vkey, err = signer.VerifierKeyFor(chain); err != nil {
					return err
				}
			}
			if cpFile != "" || vkey != "" {
				cp, err := readCheckpoint(cpFile, vkey, chain, exportFile != "")
				if err != nil {
					return err
				}
				if err := checkWitnesses(cpFile, vkey, witnessVkeys, witnessQuorum); err != nil {
					return err
				}
				opts = append(opts, verify.WithCheckpoint(cp))
			}
			var err error
			if exportFile != "" {
				if cmd.Flags().Changed("data") {
					return errors.New("give either --data or --export, not both")
				}
				if cmd.Flags().Changed("chain") {
					opts = append(opts, verify.ExpectChain(chain))
				}
				report, err = verifyExport(cmd.Context(), exportFile, stderr, opts...)
			} else {
				report, err = verifyData(cmd.Context(), dataDir, chain, stderr, opts...)
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(report); err != nil {
				return err
			}
			if !report.Valid {
				return withCode(1, errChainBroken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data folder of the store")
	cmd.Flags().StringVar(&chain, "chain", eventstore.DefaultChain, "chain (tenant) to verify")
	cmd.Flags().StringVar(&exportFile, "export", "", "JSONL export file to verify offline instead of a data folder")
	cmd.Flags().StringVar(&cpFile, "checkpoint", "", "signed checkpoint file the log must contain and extend (needs --vkey)")
	cmd.Flags().StringVar(&receiptFile, "receipt", "", "receipt file (C2SP tlog-proof) to check offline against --vkey")
	cmd.Flags().StringArrayVar(&witnessVkeys, "witness-vkey", nil, "with --checkpoint: verifier key of a witness (or a file holding it) whose cosignature the checkpoint must carry; repeatable")
	cmd.Flags().IntVar(&witnessQuorum, "witness-quorum", 0, "with --witness-vkey: how many of those witnesses must have cosigned; 0: all of them")
	cmd.Flags().StringVar(&vkey, "vkey", "", "checkpoint verifier key (NAME+hash+key) of the chain, or a file holding it; with --data and --checkpoint, default: the chain's key derived from the signing key")
	addSigningKeyFlags(cmd, &keyFlags, false)
	return cmd
}

// readCheckpoint reads and verifies the checkpoint file with the verifier
// key (given as is or as a file). For an export the chain is taken from
// the file, so the origin is checked by verify.
func readCheckpoint(file, vkey, chain string, forExport bool) (checkpoint.Checkpoint, error) {
	if file == "" || vkey == "" {
		return checkpoint.Checkpoint{}, errors.New("--checkpoint and --vkey go together")
	}
	if _, err := checkpoint.NewVerifier(vkey); err != nil {
		b, rerr := os.ReadFile(vkey)
		if rerr != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("--vkey is neither a verifier key (%v) nor a readable file (%w)", err, rerr)
		}
		vkey = string(b)
	}
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("--vkey: %w", err)
	}
	msg, err := os.ReadFile(file)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("--checkpoint: %w", err)
	}
	if forExport {
		chain = ""
	}
	cp, err := v.Open(msg, chain)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("--checkpoint %s: %w", file, err)
	}
	return cp, nil
}

func verifyData(ctx context.Context, dir, chain string, stderr io.Writer, opts ...verify.Option) (verify.Report, error) {
	s, err := openReadOnly(dir, newLogger(stderr, slog.LevelWarn))
	if err != nil {
		return verify.Report{}, err
	}
	defer s.Close()
	head, err := s.Head(chain)
	if err != nil {
		return verify.Report{}, err
	}
	bar := startProgress(stderr, "verified", head.Seq)
	defer bar.Stop()
	last := uint64(0)
	return verify.Store(ctx, s, chain, append(opts, verify.OnProgress(func(n uint64) { bar.Add(n - last); last = n }))...)
}

func verifyExport(ctx context.Context, file string, stderr io.Writer, opts ...verify.Option) (verify.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return verify.Report{}, fmt.Errorf("open export: %w", err)
	}
	defer f.Close()
	bar := startProgress(stderr, "verified lines", 0)
	defer bar.Stop()
	last := uint64(0)
	return verify.Export(ctx, f, append(opts, verify.OnProgress(func(n uint64) { bar.Add(n - last); last = n }))...)
}

// checkWitnesses requires quorum of the witness keys to have cosigned the
// checkpoint file (none asked: nothing to check).
func checkWitnesses(file, vkey string, witnessVkeys []string, quorum int) error {
	if len(witnessVkeys) == 0 {
		if quorum != 0 {
			return errors.New("--witness-quorum needs --witness-vkey")
		}
		return nil
	}
	logKey, err := keyOrFile(vkey)
	if err != nil {
		return fmt.Errorf("--vkey: %w", err)
	}
	keys := make([]string, len(witnessVkeys))
	for i, k := range witnessVkeys {
		if keys[i], err = keyOrFile(k); err != nil {
			return fmt.Errorf("--witness-vkey: %w", err)
		}
	}
	if quorum == 0 {
		quorum = len(keys)
	}
	msg, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	if _, err := witness.CheckCosigned(msg, logKey, keys, quorum); err != nil {
		return fmt.Errorf("--checkpoint %s: %w", file, err)
	}
	return nil
}
