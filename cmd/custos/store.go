package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
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

// openStore opens the store in dir for writing, creating it when create is
// true.
func openStore(dir string, create bool, logger *slog.Logger) (*eventstore.Store, error) {
	if !create && !storeExists(dir) {
		return nil, fmt.Errorf("no custos store in %s (run `custos init --data %s` or `custos serve --data %s` first)", dir, dir, dir)
	}
	return eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: create, Logger: logger})
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

// bootstrap creates a new store in dir with a first admin key and returns
// the key and its record (for its expiry). It fails with errAlreadyInitialised when dir already holds a store
// with records, changing nothing.
func bootstrap(ctx context.Context, dir string, logger *slog.Logger) (string, keys.KeyCreated, error) {
	if storeExists(dir) {
		s, err := openStore(dir, false, logger)
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
	s, err := openStore(dir, true, logger)
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
