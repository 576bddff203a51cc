package writeside_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/projections/readside"
	"github.com/custos-dev/custos/projections/replay"
	"github.com/custos-dev/custos/projections/writeside"
)

// mixGen produces a realistic mix of events that fit the state they build:
// 95% decision.made across a fixed set of sessions, the rest key, agent and
// policy changes (at most 40 policies: one per role). It keeps its own model of what exists, so its events can
// be encoded ahead of time without a State.
type mixGen struct {
	rng      *rand.Rand
	now      time.Time
	n        int
	sessions int
	started  []bool
	keyIDs   []string
	rotated  map[string]bool
	hashes   map[string][32]byte
	agents   []agents.Agent
	policies []policy.Policy
	// payloads caches the encoded decisions that do not start a session, by
	// session and variant.
	payloads map[int][]byte
}

func newMixGen(seed uint64, sessions int) *mixGen {
	return &mixGen{
		rng:      rand.New(rand.NewPCG(seed, 42)),
		now:      time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		sessions: sessions,
		started:  make([]bool, sessions),
		rotated:  map[string]bool{},
		hashes:   map[string][32]byte{},
		payloads: map[int][]byte{},
	}
}

func (g *mixGen) newKey(agentID, rotatedFrom string, scope keys.Scope) keys.KeyCreated {
	id := fmt.Sprintf("key_%026d", g.n)
	var h [32]byte
	for i := range h {
		h[i] = byte(g.rng.UintN(256))
	}
	g.keyIDs = append(g.keyIDs, id)
	g.hashes[id] = h
	return keys.KeyCreated{KeyID: id, Name: "k-" + strconv.Itoa(g.n), Scope: scope, Prefix: "cst_" + id[len(id)-6:],
		KeyHash: hex.EncodeToString(h[:]), CreatedAt: g.now, ExpiresAt: g.now.Add(365 * 24 * time.Hour), AgentID: agentID, RotatedFrom: rotatedFrom}
}

func (g *mixGen) newPolicy(name, role, id string, version int, created time.Time) policy.Policy {
	return policy.Policy{Name: name, PolicyID: id, AgentRole: role, AllowedSources: []string{"crm", "docs", "wiki"}, DeniedSources: []string{"hr"},
		AllowedActions: []policy.Action{"read", "write"}, SessionTTLMinutes: ptr(60), Version: version, CreatedAt: created, UpdatedAt: g.now}
}

func ptr[T any](v T) *T { return &v }

func sessionID(i int) string { return fmt.Sprintf("sess-%06d", i) }

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// decision returns the session and variant of the next decision and the
// decision itself.
func (g *mixGen) decision() (int, int, decision.Made) {
	s := g.rng.IntN(g.sessions)
	variant := g.rng.IntN(8)
	role := fmt.Sprintf("role-%d", s%50)
	m := decision.Made{
		Request: policy.Request{AgentRole: role, AgentID: fmt.Sprintf("agent-%d", s%200), UserID: fmt.Sprintf("user-%d", s%1000),
			SourceID: []string{"crm", "docs", "wiki", "hr"}[variant%4], Sensitivity: policy.LevelMedium,
			SessionID: sessionID(s), Action: policy.ActionRead, Query: "quarterly numbers"},
		Decision: decision.Allow, Reason: "Access granted", PolicyName: "p-" + role, PolicyID: "pol_" + role, PolicyVersion: 1,
		EvaluatedRole: role, KeyID: "key_bench", EvaluatedAt: g.now,
	}
	if variant >= 6 {
		m.Decision, m.Reason, m.DenialType = decision.Deny, "Source 'hr' is explicitly denied", "source_denied"
	}
	if !g.started[s] {
		g.started[s] = true
		m.SessionStarted = &decision.SessionStarted{SessionID: m.Request.SessionID, OwnerRole: role, OwnerAgentID: m.Request.AgentID,
			StartedAt: g.now, ExpiresAt: ptr(g.now.Add(time.Hour))}
		variant = -1
	}
	return s, variant, m
}

// change returns a key, agent or policy change.
func (g *mixGen) change() domain.Event {
	for {
		switch r := g.rng.IntN(100); {
		case r < 40 && len(g.keyIDs) > 0:
			return keys.KeyUsed{KeyID: g.keyIDs[g.rng.IntN(len(g.keyIDs))], UsedAt: g.now}
		case r < 50:
			return g.newKey("", "", []keys.Scope{keys.ScopeAdmin, keys.ScopeRead, keys.ScopeEvaluate}[g.rng.IntN(3)])
		case r < 55 && len(g.keyIDs) > 0:
			old := g.keyIDs[g.rng.IntN(len(g.keyIDs))]
			if g.rotated[old] {
				continue
			}
			g.rotated[old] = true
			return keys.KeyRotated{OldKeyID: old, OldRevokedAt: g.now.Add(time.Hour), NewKey: g.newKey("", old, keys.ScopeEvaluate)}
		case r < 60 && len(g.keyIDs) > 0:
			return keys.KeyRevoked{KeyID: g.keyIDs[g.rng.IntN(len(g.keyIDs))], RevokedAt: g.now}
		case r < 70:
			a := agents.Agent{AgentID: fmt.Sprintf("agent-%d", g.n), AgentRole: fmt.Sprintf("role-%d", g.n%50), Owner: "team",
				PermittedRoles: []string{"helper"}, Status: agents.StatusDraft, CreatedAt: g.now, UpdatedAt: g.now, StatusChangedAt: g.now}
			g.agents = append(g.agents, a)
			return agents.AgentRegistered{Agent: a}
		case r < 80 && len(g.agents) > 0:
			a := &g.agents[g.rng.IntN(len(g.agents))]
			a.Description, a.UpdatedAt = "updated "+strconv.Itoa(g.n), g.now
			return agents.AgentUpdated{Agent: *a}
		case r < 88 && len(g.agents) > 0:
			a := &g.agents[g.rng.IntN(len(g.agents))]
			from := a.Status
			a.Status = []agents.Status{agents.StatusApproved, agents.StatusSuspended}[g.rng.IntN(2)]
			a.UpdatedAt, a.StatusChangedAt = g.now, g.now
			return agents.AgentStatusChanged{AgentID: a.AgentID, From: from, To: a.Status, ChangedAt: g.now}
		case r < 93 && len(g.policies) < 40: // one policy per role, a few dozen roles
			p := g.newPolicy(fmt.Sprintf("p-%d", g.n), fmt.Sprintf("prole-%d", g.n), fmt.Sprintf("pol_%d", g.n), 1, g.now)
			g.policies = append(g.policies, p)
			return policy.PolicyCreated{Policy: p}
		case r < 98 && len(g.policies) > 0:
			p := &g.policies[g.rng.IntN(len(g.policies))]
			*p = g.newPolicy(p.Name, p.AgentRole, p.PolicyID, p.Version+1, p.CreatedAt)
			return policy.PolicyUpdated{Policy: *p}
		case r >= 98 && len(g.policies) > 30:
			i := g.rng.IntN(len(g.policies))
			p := g.policies[i]
			g.policies = append(g.policies[:i], g.policies[i+1:]...)
			return policy.PolicyDeleted{PolicyID: p.PolicyID, Name: p.Name, AgentRole: p.AgentRole, Version: p.Version, DeletedAt: g.now}
		}
	}
}

// next returns the next event.
func (g *mixGen) next() domain.Event {
	g.n++
	g.now = g.now.Add(time.Millisecond)
	if g.rng.IntN(100) < 95 {
		_, _, m := g.decision()
		return m
	}
	return g.change()
}

// nextDraft returns the next event as a draft, reusing the encoding of
// decisions that differ only in their time.
func (g *mixGen) nextDraft(tb testing.TB) eventstore.Draft {
	g.n++
	g.now = g.now.Add(time.Millisecond)
	d := eventstore.Draft{Time: g.now, Actor: "key_bench"}
	var ev domain.Event
	if g.rng.IntN(100) < 95 {
		s, variant, m := g.decision()
		d.Type = decision.TypeMade
		if variant >= 0 {
			if p, ok := g.payloads[s*8+variant]; ok {
				d.Payload = p
				return d
			}
		}
		ev = m
		defer func() {
			if variant >= 0 {
				g.payloads[s*8+variant] = d.Payload
			}
		}()
	} else {
		ev = g.change()
	}
	payload, err := domain.Encode(ev)
	require.NoError(tb, err)
	d.Type, d.Payload = ev.EventType(), payload
	return d
}

// appendEvents appends n generated events to chain in batches of 1000
// drafts, keeping a few batches in flight so that fsyncs overlap.
func appendEvents(tb testing.TB, store *eventstore.Store, chain string, g *mixGen, n int) {
	ctx := context.Background()
	var inflight []*eventstore.Pending
	for done := 0; done < n; {
		batch := make([]eventstore.Draft, 0, 1000)
		for ; len(batch) < 1000 && done < n; done++ {
			batch = append(batch, g.nextDraft(tb))
		}
		p, err := store.Enqueue(ctx, chain, batch...)
		require.NoError(tb, err)
		inflight = append(inflight, p)
		if len(inflight) == 8 {
			_, err := inflight[0].Wait(ctx)
			require.NoError(tb, err)
			inflight = inflight[1:]
		}
	}
	for _, p := range inflight {
		_, err := p.Wait(ctx)
		require.NoError(tb, err)
	}
}

func dirSize(tb testing.TB, dir string) int64 {
	var size int64
	require.NoError(tb, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	}))
	return size
}

// BenchmarkOpen measures writeside.Open on a store of CUSTOS_BENCH_EVENTS
// events (default 1M; 95% decision.made across 10k sessions) with a full
// replay and from a snapshot at the head. CUSTOS_BENCH_DIR keeps the store
// in that folder and reuses it on the next run. Run it with
// -benchtime=1x for large stores.
func BenchmarkOpen(b *testing.B) {
	events := 1_000_000
	if v := os.Getenv("CUSTOS_BENCH_EVENTS"); v != "" {
		var err error
		events, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	dir := os.Getenv("CUSTOS_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	quiet := slog.New(slog.DiscardHandler)
	exists, err := eventstore.Exists(nil, dir)
	require.NoError(b, err)
	store, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true, Logger: quiet})
	require.NoError(b, err)
	defer store.Close()
	chain := eventstore.DefaultChain
	if !exists {
		began := time.Now()
		appendEvents(b, store, chain, newMixGen(1, 10_000), events)
		b.Logf("built %d events in %s", events, time.Since(began).Round(time.Millisecond))
	}
	head, err := store.Head(chain)
	require.NoError(b, err)
	ctx := context.Background()

	// A snapshot at the head: Open saves one when it is due.
	l, err := writeside.Open(ctx, writeside.Config{Store: store, Logger: quiet})
	require.NoError(b, err)
	require.NoError(b, l.Close())
	var snapBytes int
	aux, err := store.Aux("snap-" + chain)
	require.NoError(b, err)
	value, err := replay.StoredEnvelope(ctx, aux, head.Seq)
	require.NoError(b, err, "no snapshot at the head")
	snapBytes = len(value)
	b.Logf("head seq %d, store %d MiB on disk, snapshot %d KiB", head.Seq, dirSize(b, dir)>>20, snapBytes>>10)

	for _, tc := range []struct {
		name  string
		every int
	}{{"full-replay", writeside.NoSnapshots}, {"snapshot", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				l, err := writeside.Open(ctx, writeside.Config{Store: store, Logger: quiet, SnapshotEvery: tc.every})
				require.NoError(b, err)
				require.NoError(b, l.Close())
			}
			b.ReportMetric(float64(head.Seq), "events")
			if tc.every == 0 {
				b.ReportMetric(float64(snapBytes), "snapshot-bytes")
			}
		})
	}

	// Point in time: as_of folds the key, policy and agent changes listed by
	// the audit index, so it does not depend on the number of decisions.
	index, err := readside.NewIndex(store, chain, quiet)
	require.NoError(b, err)
	began := time.Now()
	_, err = index.CatchUp(ctx)
	require.NoError(b, err)
	b.Logf("index caught up over %d events in %s", head.Seq, time.Since(began).Round(time.Millisecond))
	last, err := store.Get(ctx, chain, head.Seq)
	require.NoError(b, err)
	b.Run("as-of-head", func(b *testing.B) {
		for b.Loop() {
			_, err := index.ReplayAt(ctx, last.Time)
			require.NoError(b, err)
		}
	})

	// Export: the verifiable JSONL of the whole chain, streamed.
	b.Run("export-jsonl", func(b *testing.B) {
		var written int64
		for b.Loop() {
			cw := &countingWriter{}
			_, err := export.Write(ctx, cw, store, chain, 1, 0, export.JSONPayload)
			require.NoError(b, err)
			written = cw.n
		}
		b.SetBytes(written)
	})

	// The costs around a snapshot: the copy taken under the write lock, the
	// encoding off the lock, and decoding at start-up.
	l, err = writeside.Open(ctx, writeside.Config{Store: store, Logger: quiet})
	require.NoError(b, err)
	defer l.Close()
	var state *domain.State
	l.Read(func(s *domain.State) { state = s.Clone() })
	b.Run("frozen-copy", func(b *testing.B) {
		for b.Loop() {
			_ = state.FrozenCopy()
		}
	})
	b.Run("deep-clone", func(b *testing.B) {
		for b.Loop() {
			_ = state.Clone()
		}
	})
	snap, err := state.MarshalSnapshot()
	require.NoError(b, err)
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = state.MarshalSnapshot()
		}
		b.SetBytes(int64(len(snap)))
	})
	b.Run("unmarshal", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, domain.NewState().UnmarshalSnapshot(snap))
		}
		b.SetBytes(int64(len(snap)))
	})
}

func be64(v uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
