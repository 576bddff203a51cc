package export_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/eventstore/export"
)

// exportExampleStore returns a store holding the two records of the worked
// example in docs/export-format.md. Clock, entropy and times are fixed, so
// the records, ids and hashes are the same on every run.
func exportExampleStore(t *testing.T) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{
		Dir: t.TempDir(), CreateIfMissing: true,
		Clock:   func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		Entropy: rand.NewChaCha8([32]byte{'c', 'u', 's', 't', 'o', 's'}),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Append(context.Background(), eventstore.DefaultChain,
		eventstore.Draft{
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Type: "key.created", Actor: "system:init",
			Payload: []byte(`{"key_id":"key_admin","scope":"admin"}`),
		},
		eventstore.Draft{
			Time: time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC), Type: "decision.made", Actor: "key_admin",
			Payload: []byte(`{"decision":"DENY","reason":"Session <abc…> has expired"}`),
		})
	require.NoError(t, err)
	return s
}

// exportExample is the export of exportExampleStore with JSONPayload, as
// shown in docs/export-format.md.
const exportExample = `{"seq":"1","id":"01KDVDNA00B1WNNHK3WFBXV5AT","chain":"default","time":"2026-01-01T00:00:00Z","time_unix_nano":"1767225600000000000","type":"key.created","actor":"system:init","payload_base64":"eyJrZXlfaWQiOiJrZXlfYWRtaW4iLCJzY29wZSI6ImFkbWluIn0=","payload":{"key_id":"key_admin","scope":"admin"},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"46acc677089a58306fd7d40ad1447b95d995c69eb35cd9e660d6ed6b2a762eb9","hash_version":1}
{"seq":"2","id":"01KDVDNA3V4WER7480EA788JAZ","chain":"default","time":"2026-01-01T00:00:00.123456789Z","time_unix_nano":"1767225600123456789","type":"decision.made","actor":"key_admin","payload_base64":"eyJkZWNpc2lvbiI6IkRFTlkiLCJyZWFzb24iOiJTZXNzaW9uIDxhYmPigKY+IGhhcyBleHBpcmVkIn0=","payload":{"decision":"DENY","reason":"Session <abc…> has expired"},"prev_hash":"46acc677089a58306fd7d40ad1447b95d995c69eb35cd9e660d6ed6b2a762eb9","hash":"ab0fd8ca41ed57cf2b4f9820678c7231f73a783b57c8b45457e51fa77910916a","hash_version":1}
`

func exportString(t *testing.T, s *eventstore.Store, from, to uint64, decode export.PayloadDecoder) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	n, err := export.Write(context.Background(), &buf, s, eventstore.DefaultChain, from, to, decode)
	require.NoError(t, err)
	return buf.String(), n
}

func TestWriteGolden(t *testing.T) {
	t.Parallel()
	s := exportExampleStore(t)
	got, n := exportString(t, s, 0, 0, export.JSONPayload)
	assert.Equal(t, 2, n)
	assert.Equal(t, exportExample, got)

	// The worked example of the format document is this very export.
	doc, err := os.ReadFile("../../docs/export-format.md")
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSuffix(exportExample, "\n"), "\n") {
		assert.Contains(t, string(doc), line)
	}
	// ... and so is its step-by-step encoding of the second line.
	lines := strings.Split(exportExample, "\n")
	l, err := export.ParseLine([]byte(lines[1]))
	require.NoError(t, err)
	r, err := l.Record()
	require.NoError(t, err)
	enc := hex.EncodeToString(r.Encode(nil))
	assert.Contains(t, string(doc), "\n"+enc+"\n")
	h := eventstore.LeafHash(r.Encode(nil))
	assert.Equal(t, l.Hash, hex.EncodeToString(h[:]))
	// ... and the checkpoint shown beside it carries its tree's root.
	th, err := s.TreeHead(context.Background(), eventstore.DefaultChain)
	require.NoError(t, err)
	assert.Contains(t, string(doc), "\n2\n"+base64.StdEncoding.EncodeToString(th.Root[:])+"\n\n")
}

func TestExportLineRoundTripsHashVectors(t *testing.T) {
	t.Parallel()
	for _, v := range eventstoretest.HashVectors(t, "../testdata/hash_vectors.json") {
		t.Run(v.Chain+"/"+v.ID, func(t *testing.T) {
			t.Parallel()
			r := v.Record(t)

			l := export.LineFromRecord(r)
			assert.Equal(t, v.Payload, l.PayloadBase64)
			assert.Equal(t, v.Hash, l.Hash)
			assert.Equal(t, v.PrevHash, l.PrevHash)
			line, err := json.Marshal(l)
			require.NoError(t, err)
			parsed, err := export.ParseLine(line)
			require.NoError(t, err)
			back, err := parsed.Record()
			require.NoError(t, err)
			assert.Equal(t, r, back)
			assert.Equal(t, v.EncodingHex, hex.EncodeToString(back.Encode(nil)))
		})
	}
}

// validExportLine is the second line of the worked example, as a map that
// tests mutate.
func validExportLine(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.Split(exportExample, "\n")[1]), &m))
	return m
}

func TestExportLineRejectsMalformed(t *testing.T) {
	t.Parallel()
	set := func(key string, v any) func(map[string]any) { return func(m map[string]any) { m[key] = v } }
	del := func(key string) func(map[string]any) { return func(m map[string]any) { delete(m, key) } }
	cases := []struct {
		name   string
		mutate func(map[string]any)
		raw    string // used instead of the mutated line when set
		field  string // "" for the line as a whole
		reason string
	}{
		{name: "seq as a number", mutate: set("seq", 2), field: "seq", reason: "want a JSON string"},
		{name: "seq null", mutate: set("seq", nil), field: "seq", reason: "want a JSON string"},
		{name: "seq with leading zero", mutate: set("seq", "02"), field: "seq", reason: "leading zeros"},
		{name: "seq negative", mutate: set("seq", "-2"), field: "seq", reason: "unsigned decimal"},
		{name: "seq zero", mutate: set("seq", "0"), field: "seq", reason: "at least 1"},
		{name: "seq overflows", mutate: set("seq", "18446744073709551616"), field: "seq", reason: "out of range"},
		{name: "seq empty", mutate: set("seq", ""), field: "seq", reason: "unsigned decimal"},
		{name: "time_unix_nano as a number", mutate: set("time_unix_nano", 1.7672256001234568e18), field: "time_unix_nano", reason: "want a JSON string"},
		{name: "time_unix_nano in exponent form", mutate: set("time_unix_nano", "1.7e18"), field: "time_unix_nano", reason: "decimal integer"},
		{name: "time_unix_nano with plus", mutate: set("time_unix_nano", "+1767225600123456789"), field: "time_unix_nano", reason: "decimal integer"},
		{name: "time_unix_nano overflows", mutate: set("time_unix_nano", "9223372036854775808"), field: "time_unix_nano", reason: "out of range"},
		{name: "time disagrees", mutate: set("time", "2026-01-01T00:00:01.123456789Z"), field: "time", reason: "does not match time_unix_nano"},
		{name: "time in another zone", mutate: set("time", "2026-01-01T01:00:00.123456789+01:00"), field: "time", reason: "does not match time_unix_nano"},
		{name: "payload_base64 not base64", mutate: set("payload_base64", "e30*"), field: "payload_base64", reason: "not standard base64"},
		{name: "payload_base64 url alphabet", mutate: set("payload_base64", "-_8="), field: "payload_base64", reason: "not standard base64"},
		{name: "payload_base64 unpadded", mutate: set("payload_base64", "e30"), field: "payload_base64", reason: "not standard base64"},
		{name: "payload_base64 with line break", mutate: set("payload_base64", "e30=\n"), field: "payload_base64", reason: "canonical form"},
		{name: "prev_hash upper case", mutate: set("prev_hash", "46ACC677089A58306FD7D40AD1447B95D995C69EB35CD9E660D6ED6B2A762EB9"), field: "prev_hash", reason: "lowercase hex"},
		{name: "prev_hash short", mutate: set("prev_hash", "46acc677"), field: "prev_hash", reason: "lowercase hex"},
		{name: "hash not hex", mutate: set("hash", strings.Repeat("g", 64)), field: "hash", reason: "lowercase hex"},
		{name: "hash_version as a string", mutate: set("hash_version", "1"), field: "hash_version", reason: "want a JSON number"},
		{name: "hash_version too large", mutate: set("hash_version", 70000), field: "hash_version", reason: "not an integer"},
		{name: "hash_version fractional", mutate: set("hash_version", 1.5), field: "hash_version", reason: "not an integer"},
		{name: "id missing", mutate: del("id"), field: "id", reason: "missing"},
		{name: "payload_base64 missing", mutate: del("payload_base64"), field: "payload_base64", reason: "missing"},
		{name: "chain not a string", mutate: set("chain", []string{"default"}), field: "chain", reason: "want a JSON string"},
		{name: "unknown key", mutate: set("verified", true), reason: `unknown key "verified"`},
		{name: "lone high surrogate", raw: strings.Replace(strings.Split(exportExample, "\n")[1], `"actor":"`, `"actor":"\ud800`, 1), field: "actor", reason: "lone UTF-16 surrogate"},
		{name: "lone low surrogate", raw: strings.Replace(strings.Split(exportExample, "\n")[1], `"actor":"`, `"actor":"x\udc00`, 1), field: "actor", reason: "lone UTF-16 surrogate"},
		{name: "high surrogate before a non-surrogate", raw: strings.Replace(strings.Split(exportExample, "\n")[1], `"type":"`, `"type":"\ud83d\u0041`, 1), field: "type", reason: "lone UTF-16 surrogate"},
		{name: "duplicate key", raw: `{"seq":"2","seq":"3"}`, field: "seq", reason: "duplicate key"},
		{name: "empty", raw: ``, reason: "not a JSON object"},
		{name: "blank", raw: "  \t", reason: "not a JSON object"},
		{name: "array", raw: `[1]`, reason: "not a JSON object"},
		{name: "string", raw: `"seq"`, reason: "not a JSON object"},
		{name: "truncated", raw: `{"seq":"2","id":"01K`, reason: "not a JSON object"},
		{name: "two objects", raw: `{} {}`, reason: "trailing data"},
		{name: "invalid UTF-8", raw: "{\"seq\":\"\xff\"}", reason: "not valid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line := []byte(tc.raw)
			if tc.mutate != nil {
				m := validExportLine(t)
				tc.mutate(m)
				var err error
				line, err = json.Marshal(m)
				require.NoError(t, err)
			}
			l, err := export.ParseLine(line)
			if err == nil {
				_, err = l.Record()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, eventstore.ErrMalformedRecord)
			var fe *export.FieldError
			require.True(t, errors.As(err, &fe), "want *ExportFieldError, got %T", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Reason, tc.reason)
			if tc.field != "" {
				assert.Contains(t, err.Error(), "field "+tc.field)
			}
		})
	}
}

func TestParseLineReturnsWhatItCouldRead(t *testing.T) {
	t.Parallel()
	m := validExportLine(t)
	m["seq"] = 2
	delete(m, "hash")
	line, err := json.Marshal(m)
	require.NoError(t, err)
	l, err := export.ParseLine(line)
	var fe *export.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "seq", fe.Field, "the first problem in field order is reported")
	assert.Equal(t, m["id"], l.ID, "the id is readable for the report")
}

func TestParseLineIgnoresKeyOrderAndWhitespace(t *testing.T) {
	t.Parallel()
	lines := strings.Split(exportExample, "\n")
	want, err := export.ParseLine([]byte(lines[1]))
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &m))
	sorted, err := json.MarshalIndent(m, " ", "\t") // json sorts map keys
	require.NoError(t, err)
	got, err := export.ParseLine(append(append([]byte("\t"), sorted...), " \r"...))
	require.NoError(t, err)
	assert.JSONEq(t, string(want.Payload), string(got.Payload))
	want.Payload, got.Payload = nil, nil
	assert.Equal(t, want, got)
	wr, err := want.Record()
	require.NoError(t, err)
	gr, err := got.Record()
	require.NoError(t, err)
	assert.Equal(t, wr, gr)
}

func TestWriteRanges(t *testing.T) {
	t.Parallel()
	s, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for i := range 10 {
		_, err := s.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(i+1))
		require.NoError(t, err)
	}
	recs := eventstoretest.All(t, s, eventstore.DefaultChain)
	cases := []struct {
		name     string
		from, to uint64
		first    uint64
		n        int
	}{
		{name: "everything", from: 0, to: 0, first: 1, n: 10},
		{name: "from 1 to the end", from: 1, to: 0, first: 1, n: 10},
		{name: "middle", from: 5, to: 9, first: 5, n: 5},
		{name: "past the head", from: 8, to: 100, first: 8, n: 3},
		{name: "beyond the chain", from: 11, to: 0, n: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, n := exportString(t, s, tc.from, tc.to, nil)
			require.Equal(t, tc.n, n)
			if n == 0 {
				assert.Empty(t, out)
				return
			}
			assert.True(t, strings.HasSuffix(out, "\n"))
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.Len(t, lines, n)
			for i, line := range lines {
				assert.NotContains(t, line, `"payload":`, "no decoder, no readable payload")
				l, err := export.ParseLine([]byte(line))
				require.NoError(t, err)
				r, err := l.Record()
				require.NoError(t, err)
				assert.Equal(t, recs[int(tc.first)-1+i], r)
			}
		})
	}
}

func TestWritePayloadDecoder(t *testing.T) {
	t.Parallel()
	s, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Append(context.Background(), eventstore.DefaultChain,
		eventstore.Draft{Type: "a", Actor: "system:test", Payload: []byte("{\n  \"html\": \"<b>&amp;</b>\"\n}")},
		eventstore.Draft{Type: "b", Actor: "system:test", Payload: []byte("not json")},
		eventstore.Draft{Type: "c", Actor: "system:test", Payload: []byte(`[1,2]`)},
		eventstore.Draft{Type: "d", Actor: "system:test", Payload: nil},
	)
	require.NoError(t, err)
	out, n := exportString(t, s, 0, 0, export.JSONPayload)
	require.Equal(t, 4, n)
	lines := strings.Split(out, "\n")
	assert.Contains(t, lines[0], `"payload":{"html":"<b>&amp;</b>"}`, "compacted, not HTML-escaped")
	assert.NotContains(t, lines[1], `"payload":`)
	assert.NotContains(t, lines[2], `"payload":`, "only objects")
	assert.NotContains(t, lines[3], `"payload":`)
	assert.Contains(t, lines[3], `"payload_base64":""`)

	// The readable payload never changes the record.
	l, err := export.ParseLine([]byte(lines[0]))
	require.NoError(t, err)
	l.Payload = json.RawMessage(`{"html":"forged"}`)
	r, err := l.Record()
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"html\": \"<b>&amp;</b>\"\n}", string(r.Payload))

	// A decoder that returns invalid JSON stops the export.
	var buf bytes.Buffer
	_, err = export.Write(context.Background(), &buf, s, eventstore.DefaultChain, 0, 0,
		func(string, []byte) (json.RawMessage, bool) { return json.RawMessage(`{`), true })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "seq 1")
}

func TestWriteRefusesNonUTF8Text(t *testing.T) {
	t.Parallel()
	s, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Append(context.Background(), eventstore.DefaultChain,
		eventstore.Draft{Type: "ok", Actor: "system:test"},
		eventstore.Draft{Type: "bad\xff", Actor: "system:test"})
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := export.Write(context.Background(), &buf, s, eventstore.DefaultChain, 0, 0, nil)
	require.ErrorIs(t, err, eventstore.ErrMalformedRecord)
	assert.Contains(t, err.Error(), "type is not valid UTF-8")
	assert.Equal(t, 1, n)
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteReportsWriteErrors(t *testing.T) {
	t.Parallel()
	s := exportExampleStore(t)
	boom := errors.New("disk full")
	_, err := export.Write(context.Background(), failingWriter{boom}, s, eventstore.DefaultChain, 0, 0, nil)
	require.ErrorIs(t, err, boom)
}

func TestExportLineAcceptsSurrogatePairsAndReplacementCharacter(t *testing.T) {
	t.Parallel()
	line := strings.Split(exportExample, "\n")[1]
	for spelled, want := range map[string]string{
		`\ud83d\ude00`: "\U0001F600",
		`\ufffd`:       "\uFFFD",
		"\uFFFD":       "\uFFFD",
		`\\ud800`:      `\ud800`, // an escaped backslash, not an escape
	} {
		parsed, err := export.ParseLine([]byte(strings.Replace(line, `"actor":"`, `"actor":"`+spelled, 1)))
		require.NoError(t, err, spelled)
		require.True(t, strings.HasPrefix(parsed.Actor, want), "%s read as %q", spelled, parsed.Actor)
	}
}
