package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/httpapi/wire"
)

// numbersDTO is a flat type with every kind of scalar the fast path takes.
type numbersDTO struct {
	N   int      `json:"n"`
	U   uint16   `json:"u"`
	F   float64  `json:"f"`
	B   bool     `json:"b"`
	P   *int     `json:"p"`
	S   *string  `json:"s"`
	Ns  []int    `json:"ns"`
	Ss  []string `json:"ss"`
	Raw string
}

func TestIsFlat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dst  any
		flat bool
	}{
		{&wire.EvaluateRequest{}, true},
		{&wire.CreateKeyRequest{}, true},
		{&wire.RotateKeyRequest{}, true},
		{&numbersDTO{}, true},
		{&wire.UpdateAgentRequest{}, false}, // *[]string
		{&policy.Policy{}, false},
		{&struct{ T time.Time }{}, false},
		{&struct{ M map[string]string }{}, false},
		{&struct{ B []byte }{}, false},
		{&struct{ Inner struct{ A string } }{}, false},
		{wire.EvaluateRequest{}, false},
		{&[]string{}, false},
	} {
		require.Equal(t, tc.flat, isFlat(reflect.TypeOf(tc.dst)), "%T", tc.dst)
	}
}

var decodeBodySeeds = []string{
	`{"agent_role":"loan_officer","agent_id":"a","user_id":"u","source_id":"crm","sensitivity_level":"low","session_id":"s","principal_claims":["g:x"]}`,
	`{"agent_role":"r","agent_role":"s"}`, `{"AGENT_ROLE":"r"}`, `{"agent_role":1}`, `{"principal_claims":[1]}`,
	`{"principal_claims":"x"}`, `{"query":"a\u00e9\ud83d\ude00\"\\"}`, `{"query":"\ud800"}`, `{"bogus":{}}`,
	`{"agent_role":"r"} x`, `{"agent_role":"r"}{}`, `[]`, `null`, `"x"`, `{`, `{"agent_role":"r",}`, ` {} `,
	`{"n":1.5}`, `{"n":1e2}`, `{"n":99999999999999999999}`, `{"u":-1}`, `{"u":70000}`, `{"f":1e400}`,
	`{"b":"true"}`, `{"p":null,"s":null}`, `{"ns":[1,2,null]}`, `{"ss":null}`, `{"Raw":"x","raw":"y"}`,
	`{"n":-0}`, `{"n":01}`, `{"f":.5}`, `{"s":"\u0000"}`, "{\"s\":\"\x01\"}", `{"n":1}` + "\n",
}

// FuzzDecodeBodyFastPath checks that the fast reader (goccy/go-json and
// the single pass over names) gives exactly what the fallback
// (encoding/json alone) gives: the same problem (or none) and the same
// value, from a zero value (the fast path) and from one with defaults set
// (never the fast path).
func FuzzDecodeBodyFastPath(f *testing.F) {
	for _, s := range decodeBodySeeds {
		f.Add([]byte(s))
	}
	var d bodies
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 {
			return // decodeJSON answers an empty body before decode
		}
		p := 7
		for _, fresh := range []func() any{
			func() any { return &wire.EvaluateRequest{} },
			func() any { return &wire.CreateKeyRequest{} },
			func() any { return &numbersDTO{} },
			func() any { return &wire.EvaluateRequest{AgentRole: "default", PrincipalClaims: []string{"d"}} },
			func() any { return &wire.CreateKeyRequest{Name: "default", ExpiresDays: &p} },
			func() any { return &numbersDTO{N: 3, Ss: []string{"d"}} },
		} {
			fast, slow := fresh(), fresh()
			fastProblem := d.decode(body, fast, true)
			slowProblem := d.decode(body, slow, false)
			if fastProblem != slowProblem {
				t.Fatalf("%T %q: fast path %q, encoding/json %q", fast, body, fastProblem, slowProblem)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%T %q: fast path %+v, encoding/json %+v", fast, body, fast, slow)
			}
		}
	})
}

// TestDecodeBodyDoesNotAliasBody: decodeJSON reuses body buffers, so no
// decoded string may point into them, on either path.
func TestDecodeBodyDoesNotAliasBody(t *testing.T) {
	t.Parallel()
	var d bodies
	for _, fast := range []bool{true, false} {
		body := []byte(`{"agent_role":"loan_officer","query":"q\u00e9","principal_claims":["group:x"]}`)
		var r wire.EvaluateRequest
		require.Empty(t, d.decode(body, &r, fast))
		for i := range body {
			body[i] = 'X'
		}
		require.Equal(t, wire.EvaluateRequest{AgentRole: "loan_officer", Query: "qé", PrincipalClaims: []string{"group:x"}}, r, "fast=%v", fast)
	}
}

func TestUnicodeProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, want string
	}{
		{`{"query":"plain"}`, ""},
		{`{"query":"é🙂 \u00e9 \ud83d\ude00 \uD83D\uDE00"}`, ""},
		{`{"query":"\\ud800"}`, ""}, // an escaped backslash, then text
		{`{"query":"\ufffd"}`, ""},  // U+FFFD itself is a character
		{"{\"q\":\"\xff\"}", "Invalid request: q must be valid UTF-8 (byte 0xFF at byte 6 of the body)."},
		{"{\"a\":1, \"q\" : [\"é\xc3\"]}", "Invalid request: q must be valid UTF-8 (byte 0xC3 at byte 18 of the body)."},
		{"{\"q\xff\":1}", "Request body must be valid UTF-8: byte 0xFF at byte 3 is not."},
		{"{\"q\":\"\xed\xb0\x80\"}", "Invalid request: q must be valid UTF-8 (byte 0xED at byte 6 of the body)."},
		{"{\"q\":\"\xc0\xaf\"}", "Invalid request: q must be valid UTF-8 (byte 0xC0 at byte 6 of the body)."},
		{"[\"\xff\"]", "Request body must be valid UTF-8: byte 0xFF at byte 2 is not."},
		{"{\"q\":\"\xff", "Request body must be valid UTF-8: byte 0xFF at byte 6 is not."},
		{`{"q":"\ud800"}`, `Invalid request: q must be valid Unicode (\ud800 at byte 6 of the body is half of a surrogate pair).`},
		{`{"q":"\udfff"}`, `Invalid request: q must be valid Unicode (\udfff at byte 6 of the body is half of a surrogate pair).`},
		{`{"q":"\ud83d\u0041"}`, `Invalid request: q must be valid Unicode (\ud83d at byte 6 of the body is half of a surrogate pair).`},
		{`{"q":"\ud83d\ud83d\ude00"}`, `Invalid request: q must be valid Unicode (\ud83d at byte 6 of the body is half of a surrogate pair).`},
		{`{"q":"x\\\ud800"}`, `Invalid request: q must be valid Unicode (\ud800 at byte 9 of the body is half of a surrogate pair).`},
		{`{"q":"\ud83d`, `Request body must be valid Unicode: \ud83d at byte 6 is half of a surrogate pair.`},
	} {
		require.Equal(t, tc.want, unicodeProblem([]byte(tc.body)), "%s", tc.body)
	}
}

// FuzzUnicodeProblem checks what unicodeProblem promises: a body it passes
// decodes without a replacement character that the body did not spell
// itself, so nothing is silently changed on the way in.
func FuzzUnicodeProblem(f *testing.F) {
	for _, s := range append(decodeBodySeeds, `{"q":"\ud83d\ude00"}`, `{"q":"\udc00"}`, `{"q":"\\ud800"}`, "{\"q\":\"\xff\"}") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if unicodeProblem(body) != "" {
			return
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		spelt := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		if !spelt && strings.ContainsRune(fmt.Sprint(v), utf8.RuneError) {
			t.Fatalf("%q passed but decoded to %q", body, v)
		}
	})
}
