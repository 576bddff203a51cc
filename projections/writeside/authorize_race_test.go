package writeside_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/writeside"
)

// raceLedger opens a Ledger with the real clock on a fresh store on disk,
// and returns the store too so the test can read the log.
func raceLedger(t *testing.T) (*writeside.Ledger, *eventstore.Store) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	l, err := writeside.Open(context.Background(), writeside.Config{Store: store, Logger: quiet, SnapshotEvery: writeside.NoSnapshots})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l, store
}

func createKey(t *testing.T, l *writeside.Ledger, actor, scope, agentID string) keys.Key {
	t.Helper()
	created, _, _, err := l.CreateKey(context.Background(), actor, keys.CreateCommand{Name: "k", Scope: scope, AgentID: agentID})
	require.NoError(t, err)
	k, err := l.Key(created.KeyID)
	require.NoError(t, err)
	return k
}

// requireNothingAfterRevocation fails when a record whose actor is keyID
// sits after that key's key.revoked (or a DENY-free ALLOW by it does), and
// when the authorization check of the whole log finds anything.
func requireNothingAfterRevocation(t *testing.T, store *eventstore.Store, keyIDs ...string) {
	t.Helper()
	ctx := context.Background()
	revokedAt := map[string]uint64{}
	require.NoError(t, store.Records(ctx, eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		if r.Type == keys.TypeKeyRevoked {
			ev, err := domain.Decode(r.Type, r.Payload)
			require.NoError(t, err)
			revokedAt[ev.(keys.KeyRevoked).KeyID] = r.Seq
		}
		if seq, ok := revokedAt[r.Actor]; ok {
			return fmt.Errorf("seq %d (%s) by %s sequenced after its revocation at seq %d", r.Seq, r.Type, r.Actor, seq)
		}
		return nil
	}))
	for _, id := range keyIDs {
		require.Contains(t, revokedAt, id, "the revocation of %s was answered but is not in the log", id)
	}
	report, err := readside.CheckAuthorization(ctx, store, eventstore.DefaultChain)
	require.NoError(t, err)
	require.Empty(t, report.Violations)
}

// TestRevocationOrdersEveryLaterChange floods writes and evaluations by a
// key from many goroutines while another revokes it: whatever the
// interleaving, no record by that key is sequenced after its key.revoked,
// and each flooding call either succeeded before or got ErrInvalidKey.
func TestRevocationOrdersEveryLaterChange(t *testing.T) {
	t.Parallel()
	const rounds, flooders, callsEach = 200, 8, 6
	l, store := raceLedger(t)
	ctx := context.Background()
	root := createKey(t, l, writeside.ActorInit, "admin", "")
	_, err := l.CreatePolicy(ctx, root.KeyID, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}})
	require.NoError(t, err)
	_, err = l.RegisterAgent(ctx, root.KeyID, agents.RegisterCommand{AgentID: "a", AgentRole: "r"})
	require.NoError(t, err)
	_, err = l.ChangeAgentStatus(ctx, root.KeyID, "a", "approved")
	require.NoError(t, err)
	req := policy.Request{AgentRole: "r", AgentID: "a", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelLow}

	var revoked []string
	for round := range rounds {
		admin := createKey(t, l, root.KeyID, "admin", "")
		agent := createKey(t, l, root.KeyID, "evaluate", "a")
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, flooders*callsEach+2)
		for f := range flooders {
			wg.Go(func() {
				<-start
				for range callsEach {
					var err error
					if f%2 == 0 {
						_, _, _, err = l.CreateKey(ctx, admin.KeyID, keys.CreateCommand{Name: "flood", Scope: "admin"})
					} else {
						_, _, err = l.Evaluate(ctx, agent, req)
					}
					if err != nil && !errors.Is(err, keys.ErrInvalidKey) {
						errs <- fmt.Errorf("round %d: flooding call: %w", round, err)
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			for _, id := range []string{admin.KeyID, agent.KeyID} {
				if _, err := l.RevokeKey(ctx, root.KeyID, root.KeyID, id); err != nil {
					errs <- fmt.Errorf("round %d: revoke %s: %w", round, id, err)
				}
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		revoked = append(revoked, admin.KeyID, agent.KeyID)
	}
	requireNothingAfterRevocation(t, store, revoked...)
}

// TestLastTwoAdminsRevokingEachOther lets the only two admin keys revoke
// each other at the same moment, many times over: exactly one revocation
// wins, the loser gets ErrInvalidKey and appends nothing, and an admin key
// is always left.
func TestLastTwoAdminsRevokingEachOther(t *testing.T) {
	t.Parallel()
	const rounds = 300
	l, store := raceLedger(t)
	ctx := context.Background()
	a := createKey(t, l, writeside.ActorInit, "admin", "")
	b := createKey(t, l, a.KeyID, "admin", "")
	var revoked []string
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]error, 2)
		for i, pair := range [][2]keys.Key{{a, b}, {b, a}} {
			wg.Go(func() {
				<-start
				_, results[i] = l.RevokeKey(ctx, pair[0].KeyID, pair[0].KeyID, pair[1].KeyID)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range results {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, keys.ErrInvalidKey, "round %d", round)
		}
		require.Equal(t, 1, won, "round %d: exactly one of two mutual revocations may succeed", round)
		survivor, loser := a, b
		if results[0] != nil {
			survivor, loser = b, a
		}
		var admins int
		l.Read(func(s *domain.State) { admins, _ = s.Keys.ActiveAdmins(l.Now()) })
		require.Equal(t, 1, admins, "round %d", round)
		revoked = append(revoked, loser.KeyID)
		a, b = survivor, createKey(t, l, survivor.KeyID, "admin", "")
	}
	requireNothingAfterRevocation(t, store, revoked...)
}
