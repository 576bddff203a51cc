package keys_test

import (
	"testing"
	"time"

	"github.com/custos-dev/custos/domain/keys"
)

// BenchmarkAuthenticate measures the per-request hot path: format and
// checksum, SHA-256, map lookup, active check, view.
func BenchmarkAuthenticate(b *testing.B) {
	h := newHarness(b)
	var plain string
	for i := range 10_000 {
		_, p := h.create(keys.CreateCommand{Name: "k", Scope: "evaluate"}, t0)
		if i == 5_000 {
			plain = p
		}
	}
	now := t0.Add(time.Hour)
	bad := plain[:len(plain)-1] + "x"
	if bad == plain {
		bad = plain[:len(plain)-1] + "y"
	}

	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.Authenticate(h.state, plain, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bad checksum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.Authenticate(h.state, bad, now); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
