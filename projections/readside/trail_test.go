package readside_test

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
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/writeside"
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
	ledger, err := writeside.Open(ctx, writeside.Config{Store: store, SnapshotEvery: writeside.NoSnapshots})
	require.NoError(t, err)
	defer ledger.Close()
	index, err := readside.NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	_, err = ledger.CreatePolicy(ctx, writeside.ActorInit, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}})
	require.NoError(t, err)
	_, err = ledger.RegisterAgent(ctx, writeside.ActorInit, agents.RegisterCommand{AgentID: "a", AgentRole: "r"})
	require.NoError(t, err)
	_, err = ledger.ChangeAgentStatus(ctx, writeside.ActorInit, "a", "approved")
	require.NoError(t, err)
	req := policy.Request{AgentRole: "r", AgentID: "a", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelLow, SessionID: "held-session"}
	created, _, _, err := ledger.CreateKey(ctx, writeside.ActorInit, keys.CreateCommand{Name: "agent", Scope: "evaluate"})
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
	trail, ok, err := index.SessionTrail(ctx, "held-session")
	require.NoError(t, err, "a pending decision is not an error")
	assert.False(t, ok, "no durable decision yet: the session has no trail")
	assert.Empty(t, trail.Entries)

	hold.Store(false)
	close(release)
	require.NoError(t, <-answered)
	trail, ok, err = index.SessionTrail(ctx, "held-session")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Len(t, trail.Entries, 1)
	assert.True(t, trail.Started)
	assert.Equal(t, 1, trail.Session.Allowed)
	assert.Equal(t, []string{"crm"}, trail.Session.SourcesAccessed)
}

// TestSessionTrailHoldsEveryDecisionThatNamedIt: decisions before the
// session started (an identity denial of a draft agent) belong to its trail
// too, in log order, before and after the index caught up.
func TestSessionTrailHoldsEveryDecisionThatNamedIt(t *testing.T) {
	t.Parallel()
	store, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: vfs.NewMem(), CreateIfMissing: true})
	require.NoError(t, err)
	defer store.Close()
	ctx := context.Background()
	ledger, err := writeside.Open(ctx, writeside.Config{Store: store, SnapshotEvery: writeside.NoSnapshots})
	require.NoError(t, err)
	defer ledger.Close()
	index, err := readside.NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	_, err = ledger.CreatePolicy(ctx, writeside.ActorInit, policy.Policy{Name: "p", AgentRole: "r", AllowedSources: []string{"crm"}, SessionTTLMinutes: ptrInt(30)})
	require.NoError(t, err)
	_, err = ledger.RegisterAgent(ctx, writeside.ActorInit, agents.RegisterCommand{AgentID: "a", AgentRole: "r"})
	require.NoError(t, err)
	caller := evaluateKey(t, ledger)
	eval := func(source string) {
		t.Helper()
		req := policy.Request{AgentRole: "r", AgentID: "a", UserID: "u", SourceID: source, Sensitivity: policy.LevelLow, SessionID: "s-1"}
		_, _, err := ledger.Evaluate(ctx, caller, req)
		require.NoError(t, err)
	}
	eval("crm") // draft: identity denial, starts nothing
	_, err = ledger.ChangeAgentStatus(ctx, writeside.ActorInit, "a", "approved")
	require.NoError(t, err)
	eval("crm") // ALLOW, starts the session
	eval("hr")  // DENY by the policy
	eval("crm") // ALLOW
	other := policy.Request{AgentRole: "r", AgentID: "a", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelLow, SessionID: "s-2"}
	_, _, err = ledger.Evaluate(ctx, caller, other)
	require.NoError(t, err)

	check := func(t *testing.T) {
		trail, ok, err := index.SessionTrail(ctx, "s-1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Len(t, trail.Entries, 4)
		var reasons []string
		for i, e := range trail.Entries {
			reasons = append(reasons, e.Made.Reason)
			if i > 0 {
				assert.Greater(t, e.Seq, trail.Entries[i-1].Seq, "log order")
			}
		}
		assert.Equal(t, []string{
			"Agent 'a' is not approved (status: 'draft')", "Access granted",
			"Source 'hr' is not in the allowed list for role 'r'", "Access granted",
		}, reasons)
		sess := trail.Session
		assert.True(t, trail.Started)
		assert.Equal(t, "r", sess.OwnerRole)
		assert.Equal(t, "a", sess.OwnerAgentID)
		assert.Equal(t, trail.Entries[1].Made.EvaluatedAt, sess.StartedAt, "started by the first ALLOW, not the identity denial")
		require.NotNil(t, sess.ExpiresAt)
		assert.Equal(t, sess.StartedAt.Add(30*time.Minute), *sess.ExpiresAt)
		assert.Equal(t, 2, sess.Allowed)
		assert.Equal(t, 2, sess.Denied)
		assert.Equal(t, []string{"crm"}, sess.SourcesAccessed)
		assert.Equal(t, trail.Entries[0].ID, sess.FirstEventID)
		assert.Equal(t, trail.Entries[3].ID, sess.LastEventID)
	}
	t.Run("from the log", check)
	_, err = index.CatchUp(ctx)
	require.NoError(t, err)
	t.Run("from the index", check)

	_, ok, err := index.SessionTrail(ctx, "s-none")
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestSessionTrailOfANeverStartedSession: a session named only by denials
// before the session step has a trail, without an owner.
func TestSessionTrailOfANeverStartedSession(t *testing.T) {
	t.Parallel()
	store, err := eventstore.Open(eventstore.Options{Dir: "/d", FS: vfs.NewMem(), CreateIfMissing: true})
	require.NoError(t, err)
	defer store.Close()
	ctx := context.Background()
	ledger, err := writeside.Open(ctx, writeside.Config{Store: store, SnapshotEvery: writeside.NoSnapshots})
	require.NoError(t, err)
	defer ledger.Close()
	index, err := readside.NewIndex(store, eventstore.DefaultChain, nil)
	require.NoError(t, err)
	req := policy.Request{AgentRole: "r", AgentID: "ghost", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelLow, SessionID: "s-ghost"}
	_, _, err = ledger.Evaluate(ctx, evaluateKey(t, ledger), req)
	require.NoError(t, err)
	trail, ok, err := index.SessionTrail(ctx, "s-ghost")
	require.NoError(t, err)
	require.True(t, ok)
	assert.False(t, trail.Started)
	assert.Empty(t, trail.Session.OwnerRole)
	assert.Equal(t, 1, trail.Session.Denied)
	require.Len(t, trail.Entries, 1)
	assert.Equal(t, "Agent 'ghost' is not registered", trail.Entries[0].Made.Reason)
}

func ptrInt(n int) *int { return &n }

// evaluateKey creates an evaluate key in l for the decisions of a test.
func evaluateKey(t *testing.T, l *writeside.Ledger) keys.Key {
	t.Helper()
	created, _, _, err := l.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "agent", Scope: "evaluate"})
	require.NoError(t, err)
	k, err := l.Key(created.KeyID)
	require.NoError(t, err)
	return k
}
