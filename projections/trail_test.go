package projections_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections"
)

// TestSessionTrailShowsOnlyDurableDecisions holds the log's fsync while a
// decision is being made: the live state already knows the session, but
// its trail must not show (or fail on) a decision that is not durable yet.
func TestSessionTrailShowsOnlyDurableDecisions(t *testing.T) {
	t.Parallel()
	var hold atomic.Bool
	release := make(chan struct{})
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if hold.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			<-release
		}
		return nil
	}))
	store, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: fs, CreateIfMissing: true})
	require.NoError(t, err)
	defer store.Close()
	ctx := context.Background()
	ledger, err := projections.Open(ctx, projections.Config{Store: store, SnapshotEvery: projections.NoSnapshots})
	require.NoError(t, err)
	defer ledger.Close()
	_, err = ledger.CreatePolicy(ctx, projections.ActorInit, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}})
	require.NoError(t, err)
	_, err = ledger.RegisterAgent(ctx, projections.ActorInit, agents.RegisterCommand{AgentID: "a", AgentRole: "r"})
	require.NoError(t, err)
	_, err = ledger.ChangeAgentStatus(ctx, projections.ActorInit, "a", "approved")
	require.NoError(t, err)
	req := policy.Request{AgentRole: "r", AgentID: "a", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelLow, SessionID: "held-session"}
	created, _, _, err := ledger.CreateKey(ctx, projections.ActorInit, keys.CreateCommand{Name: "agent", Scope: "evaluate"})
	require.NoError(t, err)
	caller, err := ledger.Key(created.KeyID)
	require.NoError(t, err)

	hold.Store(true)
	answered := make(chan error, 1)
	go func() {
		_, _, err := ledger.Evaluate(ctx, caller, req)
		answered <- err
	}()
	require.Eventually(t, func() bool { _, ok := ledger.Session("held-session"); return ok }, 5*time.Second, time.Millisecond)
	select {
	case err := <-answered:
		t.Fatalf("answered before its fsync: %v", err)
	default:
	}
	_, entries, ok, err := ledger.SessionTrail(ctx, "held-session")
	require.NoError(t, err, "a pending decision is not an error")
	assert.False(t, ok, "no durable decision yet: the session has no trail")
	assert.Empty(t, entries)

	hold.Store(false)
	close(release)
	require.NoError(t, <-answered)
	sess, entries, ok, err := ledger.SessionTrail(ctx, "held-session")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Len(t, entries, 1)
	assert.Equal(t, 1, sess.Allowed)
	assert.Equal(t, []string{"crm"}, sess.SourcesAccessed)
}
