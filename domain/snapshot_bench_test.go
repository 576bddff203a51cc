package domain_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
)

// benchState folds a state of nKeys keys, 1000 agents and 10k sessions of
// 20 decisions each: the shape of a large tenant, built through Apply.
func benchState(tb testing.TB, nKeys int) (*domain.State, func(i int) (domain.Meta, domain.Event)) {
	tb.Helper()
	s := domain.NewState()
	seq := uint64(0)
	apply := func(ev domain.Event) {
		seq++
		if err := s.Apply(domain.Meta{Seq: seq, ID: fmt.Sprintf("01EV%022d", seq), Time: t0}, ev); err != nil {
			tb.Fatal(err)
		}
	}
	var h [32]byte
	for i := range nKeys {
		binary.BigEndian.PutUint64(h[:], uint64(i)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(h[8:], uint64(i))
		id := fmt.Sprintf("key_%026d", i)
		apply(keys.KeyCreated{KeyID: id, Name: "k", Scope: keys.ScopeEvaluate, Prefix: "cst_" + id[len(id)-6:],
			KeyHash: hex.EncodeToString(h[:]), CreatedAt: t0, ExpiresAt: t0.Add(365 * 24 * time.Hour)})
	}
	for i := range 1000 {
		apply(agents.AgentRegistered{Agent: agents.Agent{AgentID: fmt.Sprintf("agent-%d", i), AgentRole: "role", Status: agents.StatusDraft,
			CreatedAt: t0, UpdatedAt: t0, StatusChangedAt: t0}})
	}
	const sessions = 10_000
	made := func(i int) decision.Made {
		sid := fmt.Sprintf("sess-%06d", i%sessions)
		return decision.Made{Request: policy.Request{AgentRole: "role", AgentID: "agent-1", UserID: "u", SourceID: fmt.Sprintf("src-%d", i%4),
			Sensitivity: policy.LevelLow, SessionID: sid}, Decision: decision.Allow, KeyID: "key_1", EvaluatedAt: t0}
	}
	for i := range sessions * 20 {
		m := made(i)
		if i < sessions {
			m.SessionStarted = &decision.SessionStarted{SessionID: m.Request.SessionID, OwnerRole: "role", OwnerAgentID: "agent-1", StartedAt: t0}
		}
		apply(m)
	}
	// next returns the i-th decision after the fold: one more decision in
	// an existing session (built here, so that the benchmarks measure
	// Apply and not fmt).
	more := make([]domain.Event, sessions)
	for i := range more {
		more[i] = made(i*7919 + i%4) // 7919 is prime: every session, in a scattered order
	}
	next := func(i int) (domain.Meta, domain.Event) {
		seq++
		return domain.Meta{Seq: seq, ID: "01EV", Time: t0}, more[i%sessions]
	}
	return s, next
}

// BenchmarkFrozenCopy measures the copy a snapshot takes under the
// Ledger's write lock, at 100k and 1M keys (with 1000 agents and 10k
// sessions), and the deep Clone for comparison.
func BenchmarkFrozenCopy(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		s, next := benchState(b, n)
		b.Run(fmt.Sprintf("keys=%dk/frozen-copy", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = s.FrozenCopy()
				// One write between copies, as in the Ledger.
				m, ev := next(i)
				i++
				if err := s.Apply(m, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The worst write after a copy: a key change, whose first write
		// copies the page of its entry (128 entries) and the key table's
		// list of pages (n/128 pointers).
		b.Run(fmt.Sprintf("keys=%dk/frozen-copy+key-write", n/1000), func(b *testing.B) {
			i := 0
			for b.Loop() {
				_ = s.FrozenCopy()
				i++
				if err := s.Apply(domain.Meta{Time: t0}, keys.KeyUsed{KeyID: fmt.Sprintf("key_%026d", i*7919%n), UsedAt: t0}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("keys=%dk/deep-clone", n/1000), func(b *testing.B) {
			for b.Loop() {
				_ = s.Clone()
			}
		})
	}
}

// BenchmarkApplyDecision measures the fold of one decision.made into a
// state of 100k keys and 10k sessions: the work the Ledger does per
// decision after evaluating it. "with-snapshots" takes a FrozenCopy every
// 100k decisions, as the Ledger does by default, so copy-on-write costs
// after a snapshot are included in the per-decision figure.
func BenchmarkApplyDecision(b *testing.B) {
	for _, every := range []int{0, 100_000} {
		name := "no-snapshots"
		if every > 0 {
			name = "with-snapshots"
		}
		b.Run(name, func(b *testing.B) {
			s, next := benchState(b, 100_000)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m, ev := next(i)
				if err := s.Apply(m, ev); err != nil {
					b.Fatal(err)
				}
				i++
				if every > 0 && i%every == 0 {
					_ = s.FrozenCopy()
				}
			}
		})
	}
}
