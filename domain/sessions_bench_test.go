package domain_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
)

// BenchmarkLongSessions folds 1M decisions into 256 sessions that never
// end (the shape of a soak: a few long-lived agents deciding all day) and
// reports what the live state and its snapshot keep per decision: the
// growth of the live heap over the fold (after a full collection, so only
// what the state retains counts) divided by the decisions, the size of the
// snapshot after them, and that size per decision. A state that is
// O(sessions) keeps both per-decision figures near zero. One iteration is
// one whole fold; ns/op is the time of 1M Applies.
func BenchmarkLongSessions(b *testing.B) {
	const (
		sessions  = 256
		sources   = 8
		decisions = 1_000_000
	)
	// The events are built (and boxed in domain.Event) once and reused, so
	// that the allocations and heap growth are the state's and not the
	// benchmark's.
	made := make([]decision.Made, sessions*sources)
	events := make([]domain.Event, len(made))
	for i := range made {
		sid := fmt.Sprintf("sess-%04d", i%sessions)
		made[i] = decision.Made{Request: policy.Request{AgentRole: "role", AgentID: "agent-1", UserID: "u",
			SourceID: fmt.Sprintf("src-%d", i/sessions), Sensitivity: policy.LevelLow, SessionID: sid},
			Decision: decision.Allow, KeyID: "key_1", EvaluatedAt: t0}
		events[i] = made[i]
	}
	const id = "01EV0000000000000000000000"
	var heap, snapshot float64
	for b.Loop() {
		s := domain.NewState()
		for i := range sessions {
			m := made[i]
			m.SessionStarted = &decision.SessionStarted{SessionID: m.Request.SessionID, OwnerRole: "role", OwnerAgentID: "agent-1", StartedAt: t0}
			if err := s.Apply(domain.Meta{Seq: uint64(i + 1), ID: id, Time: t0}, m); err != nil {
				b.Fatal(err)
			}
		}
		before := liveHeap()
		for i := sessions; i < decisions; i++ {
			// Every session in turn, each over every source.
			if err := s.Apply(domain.Meta{Seq: uint64(i + 1), ID: id, Time: t0}, events[(i+i/sessions)%len(events)]); err != nil {
				b.Fatal(err)
			}
		}
		heap += float64(liveHeap()) - float64(before)
		snap, err := s.MarshalSnapshot()
		if err != nil {
			b.Fatal(err)
		}
		snapshot += float64(len(snap))
		runtime.KeepAlive(s)
	}
	n := float64(b.N)
	b.ReportMetric(heap/n/decisions, "heap-B/decision")
	b.ReportMetric(snapshot/n, "snapshot-B")
	b.ReportMetric(snapshot/n/decisions, "snapshot-B/decision")
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
