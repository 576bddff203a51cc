package projections

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
)

// Actors recorded for changes no API key made.
const (
	ActorInit  = "system:init"
	ActorReset = "system:reset"
)

// CreateKey decides, appends and applies a key.created. It returns the
// event (the new key's record) and the plaintext key, which the caller shows
// once and never stores or logs. Errors: the keys package's validation
// errors, or a log error.
func (l *Ledger) CreateKey(ctx context.Context, actor string, cmd keys.CreateCommand) (keys.KeyCreated, string, eventstore.Record, error) {
	var created keys.KeyCreated
	var plaintext string
	recs, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		created, plaintext, err = keys.Create(tx.State.Keys, cmd, tx.Now, tx.NewID("key"), tx.Entropy)
		if err != nil {
			return nil, err
		}
		if cmd.AgentID != "" {
			if _, ok := tx.State.Agents.ByID(cmd.AgentID); !ok {
				return nil, &keys.ValidationError{Field: "agent_id", Problem: "must name a registered agent"}
			}
		}
		return []domain.Event{created}, nil
	})
	if err != nil {
		return keys.KeyCreated{}, "", eventstore.Record{}, err
	}
	return created, plaintext, recs[0], nil
}

// RotateKey decides, appends and applies a key.rotated. When it returns, the
// old key is already rejected (or limited to its grace window) everywhere in
// the process.
func (l *Ledger) RotateKey(ctx context.Context, actor string, cmd keys.RotateCommand) (keys.KeyRotated, string, error) {
	var rotated keys.KeyRotated
	var plaintext string
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		var err error
		rotated, plaintext, err = keys.Rotate(tx.State.Keys, cmd, tx.Now, tx.NewID("key"), tx.Entropy)
		if err != nil {
			return nil, err
		}
		return []domain.Event{rotated}, nil
	})
	if err != nil {
		return keys.KeyRotated{}, "", err
	}
	return rotated, plaintext, nil
}

// RevokeKey decides, appends and applies a key.revoked and returns the key
// as it is afterwards. actorKeyID is the calling key (for the last-admin
// rule), actor what the log records.
func (l *Ledger) RevokeKey(ctx context.Context, actor, actorKeyID, keyID string) (keys.Key, error) {
	var key keys.Key
	_, err := l.Write(ctx, actor, func(tx *Tx) ([]domain.Event, error) {
		ev, err := keys.Revoke(tx.State.Keys, keyID, actorKeyID, tx.Now)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ev}, nil
	})
	if err != nil {
		return keys.Key{}, err
	}
	l.Read(func(s *domain.State) { key, _ = s.Keys.ByID(keyID) })
	return key, nil
}

// Authenticate returns the active key with this plaintext, or
// keys.ErrInvalidKey. It only reads; see RecordUse.
func (l *Ledger) Authenticate(plaintext string) (keys.Key, error) {
	var key keys.Key
	var err error
	now := l.Now()
	l.Read(func(s *domain.State) { key, err = keys.Authenticate(s.Keys, plaintext, now) })
	return key, err
}

// RecordUse records a key.used for key, at most once a minute per key, so
// that last_used_at derives from the log. It does not wait for the fsync: a
// lost use record costs nothing. Call it for requests that succeeded, so
// that a rejected request appends nothing.
func (l *Ledger) RecordUse(ctx context.Context, key keys.Key) {
	if !keys.ShouldRecordUse(key, l.Now()) {
		return
	}
	err := l.WriteAsync(ctx, key.KeyID, func(tx *Tx) ([]domain.Event, error) {
		k, ok := tx.State.Keys.ByID(key.KeyID)
		if !ok || !keys.ShouldRecordUse(k, tx.Now) {
			return nil, nil // another request recorded it first
		}
		return []domain.Event{keys.KeyUsed{KeyID: key.KeyID, UsedAt: tx.Now}}, nil
	})
	if err != nil {
		// A failed store is reported by the request's own write, if any.
		l.cfg.Logger.Warn("record key use", "key_id", key.KeyID, "err", err)
	}
}

// Key returns the key with id, or keys.ErrNotFound.
func (l *Ledger) Key(id string) (keys.Key, error) {
	var key keys.Key
	var ok bool
	l.Read(func(s *domain.State) { key, ok = s.Keys.ByID(id) })
	if !ok {
		return keys.Key{}, fmt.Errorf("%w: %s", keys.ErrNotFound, id)
	}
	return key, nil
}

// Keys returns every key ever created, newest first.
func (l *Ledger) Keys() []keys.Key {
	var out []keys.Key
	l.Read(func(s *domain.State) { out = s.Keys.List() })
	return out
}
