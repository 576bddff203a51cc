package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// Checkpoint signing keys. The key signs every checkpoint of the log, so it
// lives outside the data folder: a copy of the folder must not carry the
// power to sign (docs/runbook.md, "Signing key").

// signingKeyFlags are the key flags of the commands that write the log.
type signingKeyFlags struct {
	path   string // --signing-key; "" means defaultSigningKey(data)
	origin string // --origin: the key's name, prefix of every origin
}

func addSigningKeyFlags(cmd *cobra.Command, k *signingKeyFlags, withOrigin bool) {
	cmd.Flags().StringVar(&k.path, "signing-key", "", "checkpoint signing key file (note signer key, 0600), kept outside the data folder; default: DATA.signing-key beside the data folder")
	if withOrigin {
		cmd.Flags().StringVar(&k.origin, "origin", "", "name of a new signing key, and so the origin prefix of every checkpoint (NAME/CHAIN); default custos.example/HOSTNAME: give your own, e.g. custos.bank.example/prod")
	}
}

// keyPath returns the signing key path for the data folder dataDir.
func (k signingKeyFlags) keyPath(dataDir string) string {
	if k.path != "" {
		return k.path
	}
	return defaultSigningKey(dataDir)
}

// defaultSigningKey is DATA.signing-key: beside the data folder, not in it.
func defaultSigningKey(dataDir string) string {
	return filepath.Clean(dataDir) + ".signing-key"
}

var originUnsafe = regexp.MustCompile(`[^a-z0-9.-]+`)

// defaultOrigin is custos.example/HOSTNAME.
func defaultOrigin() string {
	host, err := os.Hostname()
	host = strings.Trim(originUnsafe.ReplaceAllString(strings.ToLower(host), "-"), "-")
	if err != nil || host == "" {
		host = "custos"
	}
	return "custos.example/" + host
}

// errNoSigningKey means a store exists but its signing key file does not.
var errNoSigningKey = errors.New("no checkpoint signing key")

// checkKeyOutside refuses a key path inside the data folder, symlinks
// resolved (of the key file itself, its folders and the data folder), so
// that neither a link into the folder nor a linked data folder passes.
func checkKeyOutside(path, dataDir string) error {
	key, err1 := resolveExisting(path)
	data, err2 := resolveExisting(dataDir)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if rel, err := filepath.Rel(data, key); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("signing key %s is inside the data folder %s: keep it outside, so that a copy of the folder cannot sign", path, dataDir)
	}
	return nil
}

// loadSigningKey reads the signer key at path.
func loadSigningKey(path, dataDir string) (*checkpoint.Signer, error) {
	if err := checkKeyOutside(path, dataDir); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: give --signing-key (or CUSTOS_SIGNING_KEY) the key `custos init` wrote (docs/runbook.md, \"Signing key\")", errNoSigningKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	s, err := checkpoint.NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return s, nil
}

// loadOrCreateSigningKey reads the key at path, or creates it (0600, named
// origin) when it does not exist and reports created.
func loadOrCreateSigningKey(path, dataDir, origin string) (s *checkpoint.Signer, created bool, err error) {
	s, err = loadSigningKey(path, dataDir)
	if !errors.Is(err, errNoSigningKey) {
		return s, false, err
	}
	if !storeExists(dataDir) {
		if err := requireEmpty(dataDir); err != nil {
			return nil, false, err
		}
	}
	if origin == "" {
		origin = defaultOrigin()
	}
	skey, _, err := checkpoint.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create signing key: %w", err)
	}
	if _, err := io.WriteString(f, skey+"\n"); err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("write signing key: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return nil, false, fmt.Errorf("write signing key: %w", err)
	}
	s, err = checkpoint.NewSigner(skey)
	return s, true, err
}

// writeVerifierKey writes the checkpoint verifier key to out, or to stderr
// when out is "".
func writeVerifierKey(vkey, out string, stderr io.Writer) error {
	return writeKeyLine(vkey, out, stderr, "checkpoint verifier key (give auditors and witnesses this, never the signing key)")
}

// writeKeyLine writes vkey and a newline to the file out, or to stderr
// after a line saying what it is when out is "".
func writeKeyLine(vkey, out string, stderr io.Writer, what string) error {
	if out == "" {
		fmt.Fprintf(stderr, "custos: %s:\n%s\n", what, vkey)
		return nil
	}
	if err := os.WriteFile(out, []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("--vkey-out: %w", err)
	}
	return nil
}
