package writeside_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/projections/writeside"
)

// TestAuthenticationFollowsEveryKeyEvent applies one event of every key
// event type that keys.Decode knows, through the Ledger, to keys that
// Authenticate has cached, and checks after each that Authenticate answers
// exactly as the live state does. A new key event type without a sample
// here fails the test, and so does one whose Apply changes a key without
// recording it as changed (the cache would keep the old key).
func TestAuthenticationFollowsEveryKeyEvent(t *testing.T) {
	t.Parallel()
	l, _ := raceLedger(t)
	ctx := context.Background()
	plaintexts := map[string]string{} // key id -> plaintext, for every key made here
	newKey := func(scope string) string {
		created, plaintext, _, err := l.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "k", Scope: scope})
		require.NoError(t, err)
		plaintexts[created.KeyID] = plaintext
		_, err = l.Authenticate(plaintext) // cache it
		require.NoError(t, err)
		return created.KeyID
	}
	admin, used, rotated, revoked := newKey("admin"), newKey("evaluate"), newKey("read"), newKey("evaluate")

	samples := map[string]writeside.Decider{
		keys.TypeKeyCreated: func(tx *writeside.Tx) ([]domain.Event, error) {
			ev, plaintext, err := keys.Create(tx.State.Keys, keys.CreateCommand{Name: "new", Scope: "read"}, tx.Now, tx.NewID("key"), tx.Entropy)
			plaintexts[ev.KeyID] = plaintext
			return []domain.Event{ev}, err
		},
		keys.TypeKeyRotated: func(tx *writeside.Tx) ([]domain.Event, error) {
			grace := 60
			ev, plaintext, err := keys.Rotate(tx.State.Keys, keys.RotateCommand{KeyID: rotated, GraceSeconds: &grace}, tx.Now, tx.NewID("key"), tx.Entropy)
			plaintexts[ev.NewKey.KeyID] = plaintext
			return []domain.Event{ev}, err
		},
		keys.TypeKeyRevoked: func(tx *writeside.Tx) ([]domain.Event, error) {
			ev, err := keys.Revoke(tx.State.Keys, revoked, admin, tx.Now)
			return []domain.Event{ev}, err
		},
		keys.TypeKeyUsed: func(tx *writeside.Tx) ([]domain.Event, error) {
			return []domain.Event{keys.KeyUsed{KeyID: used, UsedAt: tx.Now}}, nil
		},
	}
	for _, typ := range keys.EventTypes() {
		decide, ok := samples[typ]
		require.True(t, ok, "no sample for key event type %s: add one here, and make sure keys.State.Apply records the keys it changes", typ)
		_, err := l.Write(ctx, "system:test", decide)
		require.NoError(t, err, typ)
		for id, plaintext := range plaintexts {
			got, err := l.Authenticate(plaintext)
			want, werr := l.Key(id)
			require.NoError(t, werr)
			if !want.IsActive(l.Now()) {
				require.ErrorIs(t, err, keys.ErrInvalidKey, "after %s: key %s is inactive in the state", typ, id)
				continue
			}
			require.NoError(t, err, "after %s: key %s", typ, id)
			require.Equal(t, want, got, "after %s: Authenticate's copy of key %s differs from the state", typ, id)
		}
	}
}
