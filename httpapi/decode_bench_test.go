package httpapi

import (
	"testing"

	"github.com/custos-dev/custos/httpapi/wire"
)

var benchBody = []byte(`{"agent_role":"loan_officer","agent_id":"agent-lt-81466448-0","user_id":"user-17","source_id":"crm","sensitivity_level":"medium","session_id":"sess-81466448-12-3","action":"read","query":"customer income history for underwriting","principal_claims":["group:credit"]}`)

func BenchmarkDecodeBody(b *testing.B) {
	for _, fast := range []bool{false, true} {
		name := "encoding_json"
		if fast {
			name = "fast_path"
		}
		b.Run(name, func(b *testing.B) {
			var d bodies
			b.ReportAllocs()
			for b.Loop() {
				var r wire.EvaluateRequest
				if p := d.decode(benchBody, &r, fast); p != "" {
					b.Fatal(p)
				}
			}
		})
	}
}

// BenchmarkUnicodeProblem is the cost of refusing invalid UTF-8 up front,
// part of BenchmarkDecodeBody.
func BenchmarkUnicodeProblem(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if p := unicodeProblem(benchBody); p != "" {
			b.Fatal(p)
		}
	}
}
