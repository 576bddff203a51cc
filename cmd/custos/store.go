package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/projections/writeside"
)

// errAlreadyInitialised is returned by init on a folder that holds a store
// with records.
var errAlreadyInitialised = errors.New("already initialised")

// storeExists reports whether dir holds a store; an unreadable folder
// counts as one so that nothing is created over it.
func storeExists(dir string) bool {
	ok, err := eventstore.Exists(nil, dir)
	return ok || err != nil
}

// privateFiles makes every folder and file the process creates from now on
// readable by its user only (umask 077): Pebble creates folders 0755 and
// files 0666 less the umask, and a store holds key hashes, policies and
// every decision. Called by every command that creates a store or files in
// one.
func privateFiles() { syscall.Umask(0o077) }

// signing is how a writable store signs its checkpoints: signer nil signs
// none (commands that never append, like an offline backup).
type signing struct {
	signer       *checkpoint.Signer
	signExisting bool // sign a chain from before checkpoints once (eventstore.Options.SignExisting)
}

// openStore opens the store in dir for writing, creating it when create is
// true. The data folder is created 0700 and its files 0600 (privateFiles).
func openStore(dir string, create bool, sig signing, logger *slog.Logger) (*eventstore.Store, error) {
	privateFiles()
	if !create && !storeExists(dir) {
		return nil, fmt.Errorf("no custos store in %s (run `custos init --data %s` or `custos serve --data %s` first)", dir, dir, dir)
	}
	return eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: create, Logger: logger, Signer: sig.signer, SignExisting: sig.signExisting})
}

// openReadOnly opens an existing store for reading only.
func openReadOnly(dir string, logger *slog.Logger) (*eventstore.Store, error) {
	if !storeExists(dir) {
		return nil, fmt.Errorf("no custos store in %s", dir)
	}
	return eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true, Logger: logger})
}

// createAdminKey appends a key.created for a new admin key and returns the
// plaintext key.
func createAdminKey(ctx context.Context, ledger *writeside.Ledger, actor, name string) (string, keys.KeyCreated, error) {
	created, plaintext, _, err := ledger.CreateKey(ctx, actor, keys.CreateCommand{Name: name, Scope: string(keys.ScopeAdmin)})
	if err != nil {
		return "", keys.KeyCreated{}, fmt.Errorf("create admin key: %w", err)
	}
	return plaintext, created, nil
}

// requireEmpty refuses to create a store in dir when dir holds anything
// (but lost+found, which a file system's root has): a store created there
// would mix with files that are not its own, and a wrong --data (a home
// folder, /) would be filled with Pebble's files. A missing dir is fine.
func requireEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data folder %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() != "lost+found" {
			return fmt.Errorf("%s is not empty and holds no custos store (it has %s): give a new or empty folder, or the folder of a store", dir, e.Name())
		}
	}
	return nil
}

// bootstrap creates a new store in dir with a first admin key and returns
// the key and its record (for its expiry). It fails with
// errAlreadyInitialised when dir already holds a store with records, and
// refuses a non-empty folder that holds no store; it changes nothing then.
func bootstrap(ctx context.Context, dir string, sig signing, logger *slog.Logger) (string, keys.KeyCreated, error) {
	if !storeExists(dir) {
		if err := requireEmpty(dir); err != nil {
			return "", keys.KeyCreated{}, err
		}
	}
	if storeExists(dir) {
		s, err := openStore(dir, false, sig, logger)
		if err != nil {
			return "", keys.KeyCreated{}, err
		}
		head, err := s.Head(eventstore.DefaultChain)
		closeErr := s.Close()
		if err != nil {
			return "", keys.KeyCreated{}, err
		}
		if head.Seq > 0 {
			return "", keys.KeyCreated{}, fmt.Errorf("%w: %s holds a chain of %d events; use `custos admin-key reset --data %s` if the admin key is lost", errAlreadyInitialised, dir, head.Seq, dir)
		}
		if closeErr != nil {
			return "", keys.KeyCreated{}, closeErr
		}
	}
	s, err := openStore(dir, true, sig, logger)
	if err != nil {
		return "", keys.KeyCreated{}, err
	}
	defer s.Close()
	ledger, err := writeside.Open(ctx, writeside.Config{Store: s, Logger: logger})
	if err != nil {
		return "", keys.KeyCreated{}, err
	}
	defer ledger.Close()
	key, created, err := createAdminKey(ctx, ledger, writeside.ActorInit, "bootstrap-admin")
	if err != nil {
		return "", keys.KeyCreated{}, err
	}
	return key, created, errors.Join(ledger.Close(), s.Close())
}
