package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/verify"
)

// exportFixture is a store of decisions and its records.
type exportFixture struct {
	dir  string
	recs []eventstore.Record
}

// newExportFixture appends n decision records, each with a reason, to a new
// store on disk and closes it.
func newExportFixture(t *testing.T, n int) exportFixture {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
	require.NoError(t, err)
	var recs []eventstore.Record
	for i := range n {
		r, err := s.Append(context.Background(), chain, eventstore.Draft{
			Type: "decision.made", Actor: "key_01JQ7Z6V0000000000000000AB",
			Payload: []byte(fmt.Sprintf(`{"decision":"DENY","n":%d,"reason":"Session %d has expired"}`, i+1, i+1)),
		})
		require.NoError(t, err)
		recs = append(recs, r...)
	}
	require.NoError(t, s.Close())
	return exportFixture{dir: dir, recs: recs}
}

// export writes records from..to of the fixture's store as JSONL lines
// (without their newlines), with readable payloads.
func (f exportFixture) export(t *testing.T, from, to uint64) []string {
	t.Helper()
	return exportDir(t, f.dir, from, to)
}

func exportDir(t *testing.T, dir string, from, to uint64) []string {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	var buf bytes.Buffer
	n, err := export.Write(context.Background(), &buf, s, chain, from, to, export.JSONPayload)
	require.NoError(t, err)
	if n == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, n)
	return lines
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func verifyExport(t *testing.T, file string) verify.Report {
	t.Helper()
	r, err := verify.Export(context.Background(), strings.NewReader(file))
	require.NoError(t, err)
	return r
}

// editLine decodes line, lets fn change it and re-encodes it.
func editLine(t *testing.T, line string, fn func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &m))
	fn(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out)
}

func hexHash(h eventstore.Hash) string { return hex.EncodeToString(h[:]) }

func TestExportIntactIsValid(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 10)
	lines := f.export(t, 0, 0)
	for name, file := range map[string]string{
		"newline terminated":         joinLines(lines),
		"last line without newline":  strings.Join(lines, "\n"),
		"CRLF line ends":             strings.Join(lines, "\r\n") + "\r\n",
		"without readable payloads":  joinLines(withoutPayload(t, lines)),
		"with forged readable value": joinLines(forgeReadablePayload(t, lines)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := verifyExport(t, file)
			assert.True(t, r.Valid, "%+v", r.Detail)
			assert.Equal(t, uint64(10), r.Total)
			assert.Equal(t, uint64(10), r.Chained)
			assert.Nil(t, r.BrokenAt)
			assert.Equal(t, uint64(10), r.HeadSeq)
			assert.Equal(t, hexHash(f.recs[9].Hash), r.HeadHash)
			assert.Equal(t, uint64(1), r.AnchorSeq)
			assert.Equal(t, strings.Repeat("0", 64), r.AnchorPrevHash)
		})
	}
}

func withoutPayload(t *testing.T, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = editLine(t, l, func(m map[string]any) { delete(m, "payload") })
	}
	return out
}

// forgeReadablePayload changes the readable payload only: it is not hashed
// and must not matter.
func forgeReadablePayload(t *testing.T, lines []string) []string {
	out := append([]string(nil), lines...)
	out[4] = editLine(t, out[4], func(m map[string]any) {
		m["payload"].(map[string]any)["decision"] = "ALLOW"
	})
	return out
}

func TestExportEmptyFileIsValid(t *testing.T) {
	t.Parallel()
	r := verifyExport(t, "")
	assert.True(t, r.Valid)
	assert.Zero(t, r.Total)
	assert.Zero(t, r.HeadSeq)
}

// exportTamperCase changes an export of 10 records and says what the
// verifier must report.
type exportTamperCase struct {
	name   string
	tamper func(t *testing.T, lines []string, recs []eventstore.Record) []string
	// want, for a broken file
	kind     string
	seq      uint64
	brokenAt func(recs []eventstore.Record) *string // nil func: not checked
	chained  uint64
	total    uint64
	message  string // substring of the problem's message
	// noJQ is set for cases whose file is not JSON on every line.
	noJQ bool
	// forgedHead is set when the last chained record is a forgery.
	forgedHead bool
}

func id(i int) func(recs []eventstore.Record) *string {
	return func(recs []eventstore.Record) *string { return &recs[i].ID }
}

func noID(recs []eventstore.Record) *string { return nil }

func changeReason(t *testing.T, line string) string {
	return editLine(t, line, func(m map[string]any) {
		p, err := base64.StdEncoding.DecodeString(m["payload_base64"].(string))
		require.NoError(t, err)
		changed := bytes.Replace(p, []byte("Session"), []byte("Sessiom"), 1)
		require.NotEqual(t, p, changed)
		m["payload_base64"] = base64.StdEncoding.EncodeToString(changed)
	})
}

var exportTamperCases = []exportTamperCase{
	{
		name: "one changed character in a reason",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = changeReason(t, l[4])
			return l
		},
		kind: verify.KindHashMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "changed time",
		tamper: func(t *testing.T, l []string, recs []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) {
				ns := recs[4].Time.UnixNano() + 1
				m["time_unix_nano"] = fmt.Sprint(ns)
				m["time"] = recs[4].Time.Add(1).Format("2006-01-02T15:04:05.999999999Z07:00")
			})
			return l
		},
		kind: verify.KindHashMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "changed actor",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["actor"] = "system:init" })
			return l
		},
		kind: verify.KindHashMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "changed prev_hash",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["prev_hash"] = strings.Repeat("ab", 32) })
			return l
		},
		kind: verify.KindHashMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "changed hash",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["hash"] = strings.Repeat("ab", 32) })
			return l
		},
		kind: verify.KindHashMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "record replaced with a recomputed hash",
		tamper: func(t *testing.T, l []string, recs []eventstore.Record) []string {
			forged := recs[4]
			forged.Payload = []byte(`{"decision":"ALLOW","n":5,"reason":"ok"}`)
			forged.Hash = forged.ComputeHash()
			line, err := json.Marshal(export.LineFromRecord(forged))
			require.NoError(t, err)
			l[4] = string(line)
			return l
		},
		kind: verify.KindLinkBroken, seq: 6, brokenAt: id(5), chained: 5, total: 10, forgedHead: true,
	},
	{
		name: "chain renamed",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["chain"] = "tenant-b" })
			return l
		},
		kind: verify.KindChainMismatch, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "unknown hash_version",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["hash_version"] = 2 })
			return l
		},
		kind: verify.KindUnknownVersion, seq: 5, brokenAt: id(4), chained: 4, total: 10,
	},
	{
		name: "deleted line",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			return append(l[:4:4], l[5:]...)
		},
		kind: verify.KindSeqGap, seq: 6, brokenAt: id(5), chained: 4, total: 9,
	},
	{
		name: "two adjacent lines swapped",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4], l[5] = l[5], l[4]
			return l
		},
		kind: verify.KindSeqMismatch, seq: 5, brokenAt: id(5), chained: 4, total: 10,
	},
	{
		name: "two distant lines swapped",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4], l[8] = l[8], l[4]
			return l
		},
		kind: verify.KindSeqMismatch, seq: 5, brokenAt: id(8), chained: 4, total: 10,
	},
	{
		name: "line moved to the end",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			moved := l[4]
			return append(append(l[:4:4], l[5:]...), moved)
		},
		kind: verify.KindSeqMismatch, seq: 5, brokenAt: id(5), chained: 4, total: 10,
	},
	{
		name: "line duplicated",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			return append(l[:5:5], l[4:]...)
		},
		kind: verify.KindSeqMismatch, seq: 6, brokenAt: id(4), chained: 5, total: 11,
	},
	{
		name: "first line deleted from a full export",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			// Undetectable inside the file: it is a valid range from seq
			// 2, and the report's anchor says so (see TestExportAnchor).
			return l[1:]
		},
		total: 9, chained: 9,
	},
	{
		name: "last line deleted",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			// Undetectable inside the file: head_seq says 9.
			return l[:9]
		},
		total: 9, chained: 9,
	},
	{
		name: "truncated JSON",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = l[4][:len(l[4])-1]
			return l
		},
		// The id was read before the JSON broke off.
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: not a JSON object: unexpected EOF", noJQ: true,
	},
	{
		name: "not JSON",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = "seq=5 id=" + l[4]
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: noID, chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: not a JSON object", noJQ: true,
	},
	{
		name: "missing field",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { delete(m, "prev_hash") })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: field prev_hash: missing",
	},
	{
		name: "bad hex",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["hash"] = strings.Repeat("zz", 32) })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: field hash: ",
	},
	{
		name: "bad base64",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["payload_base64"] = "e30" })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: field payload_base64: not standard base64",
	},
	{
		name: "seq as a JSON number",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["seq"] = 5 })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: field seq: want a JSON string",
	},
	{
		name: "readable time changed",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["time"] = "2020-01-01T00:00:00Z" })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: "line 5: eventstore: malformed record: field time: ",
	},
	{
		name: "unknown key added",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[4] = editLine(t, l[4], func(m map[string]any) { m["verified"] = true })
			return l
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: id(4), chained: 4, total: 10,
		message: `line 5: eventstore: malformed record: unknown key "verified"`,
	},
	{
		name: "blank line inside",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			return append(l[:4:4], append([]string{""}, l[4:]...)...)
		},
		kind: verify.KindMalformed, seq: 5, brokenAt: noID, chained: 4, total: 11,
		message: "line 5: blank line", noJQ: true,
	},
	{
		name: "blank line at the end",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			return append(l, "")
		},
		kind: verify.KindMalformed, seq: 11, brokenAt: noID, chained: 10, total: 11,
		message: "line 11: blank line", noJQ: true,
	},
	{
		name: "first line malformed",
		tamper: func(t *testing.T, l []string, _ []eventstore.Record) []string {
			l[0] = editLine(t, l[0], func(m map[string]any) { m["hash"] = "" })
			return l
		},
		kind: verify.KindMalformed, seq: 1, brokenAt: id(0), chained: 0, total: 10,
		message: "line 1: eventstore: malformed record: field hash: ",
	},
}

func TestExportTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range exportTamperCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExportFixture(t, 10)
			file := joinLines(tc.tamper(t, f.export(t, 0, 0), f.recs))
			checkTamperReport(t, tc, f.recs, verifyExport(t, file))
		})
	}
}

func checkTamperReport(t *testing.T, tc exportTamperCase, recs []eventstore.Record, r verify.Report) {
	t.Helper()
	assert.Equal(t, tc.total, r.Total, "total")
	assert.Equal(t, tc.chained, r.Chained, "chained")
	if tc.kind == "" {
		assert.True(t, r.Valid, "%+v", r.Detail)
		assert.Equal(t, recs[r.HeadSeq-1].Seq, r.HeadSeq)
		assert.Equal(t, hexHash(recs[r.HeadSeq-1].Hash), r.HeadHash)
		return
	}
	require.False(t, r.Valid)
	require.NotNil(t, r.Detail)
	assert.Equal(t, tc.kind, r.Detail.Kind, r.Detail.Message)
	assert.Equal(t, tc.seq, r.Detail.Seq, "problem seq")
	assert.Contains(t, r.Detail.Message, tc.message)
	if want := tc.brokenAt(recs); want == nil {
		assert.Nil(t, r.BrokenAt)
	} else if assert.NotNil(t, r.BrokenAt) {
		assert.Equal(t, *want, *r.BrokenAt)
	}
	// The head is the last record that chained.
	if tc.chained > 0 && !tc.forgedHead {
		assert.Equal(t, tc.chained, r.HeadSeq)
		assert.Equal(t, hexHash(recs[tc.chained-1].Hash), r.HeadHash)
	}
}

// stable drops the fields of a report that differ from run to run.
func stable(r verify.Report) verify.Report {
	r.DurationMS = 0
	return r
}

func TestExportResultSurvivesReencoding(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 10)
	reencode := func(t *testing.T, file string) string {
		var out strings.Builder
		for _, line := range strings.SplitAfter(file, "\n") {
			body := strings.TrimSuffix(line, "\n")
			var m map[string]any
			if json.Unmarshal([]byte(body), &m) != nil {
				out.WriteString(line) // not JSON: nothing to re-encode
				continue
			}
			b, err := json.Marshal(m) // sorted keys, no indentation
			require.NoError(t, err)
			out.Write(b)
			if strings.HasSuffix(line, "\n") {
				out.WriteString("\n")
			}
		}
		return out.String()
	}
	jq, jqErr := exec.LookPath("jq")
	base := f.export(t, 0, 0)
	for _, tc := range append([]exportTamperCase{{name: "intact", tamper: func(_ *testing.T, l []string, _ []eventstore.Record) []string { return l }, total: 10, chained: 10}}, exportTamperCases...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := joinLines(tc.tamper(t, append([]string(nil), base...), f.recs))
			want := stable(verifyExport(t, file))
			checkTamperReport(t, tc, f.recs, want)

			t.Run("go sorted keys", func(t *testing.T) {
				again := reencode(t, file)
				require.NotEqual(t, file, again, "re-encoding must change the text")
				assert.Equal(t, want, stable(verifyExport(t, again)))
			})
			if tc.noJQ {
				return // jq cannot read a file with non-JSON lines
			}
			t.Run("jq -c -S", func(t *testing.T) {
				if jqErr != nil {
					t.Skipf("jq is not installed (%v)", jqErr)
				}
				cmd := exec.Command(jq, "-c", "-S", ".")
				cmd.Stdin = strings.NewReader(file)
				out, err := cmd.Output()
				require.NoError(t, err)
				require.NotEqual(t, file, string(out), "jq must change the text")
				assert.Equal(t, want, stable(verifyExport(t, string(out))))
			})
		})
	}
}

func TestExportAnchor(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 12)
	lines := f.export(t, 5, 9)
	require.Len(t, lines, 5)

	r := verifyExport(t, joinLines(lines))
	assert.True(t, r.Valid, "%+v", r.Detail)
	assert.Equal(t, uint64(5), r.Total)
	assert.Equal(t, uint64(5), r.Chained)
	assert.Equal(t, uint64(5), r.AnchorSeq)
	assert.Equal(t, hexHash(f.recs[3].Hash), r.AnchorPrevHash, "anchored at record 4's hash")
	assert.Equal(t, uint64(9), r.HeadSeq)
	assert.Equal(t, hexHash(f.recs[8].Hash), r.HeadHash)

	t.Run("tampered inside the range", func(t *testing.T) {
		t.Parallel()
		l := append([]string(nil), lines...)
		l[2] = changeReason(t, l[2])
		r := verifyExport(t, joinLines(l))
		require.False(t, r.Valid)
		assert.Equal(t, verify.KindHashMismatch, r.Detail.Kind)
		assert.Equal(t, uint64(7), r.Detail.Seq)
		assert.Equal(t, f.recs[6].ID, *r.BrokenAt)
		assert.Equal(t, uint64(2), r.Chained)
		assert.Equal(t, uint64(5), r.AnchorSeq)
	})
	t.Run("forged anchor shows in the report", func(t *testing.T) {
		t.Parallel()
		// An attacker who rewrites the first line's prev_hash must rehash
		// it and every later line; the result verifies, but its anchor no
		// longer matches the trusted hash of record 4.
		recs := append([]eventstore.Record(nil), f.recs[4:9]...)
		var l []string
		prev := eventstore.Hash{0xaa}
		for _, rec := range recs {
			rec.PrevHash = prev
			rec.Hash = rec.ComputeHash()
			prev = rec.Hash
			b, err := json.Marshal(export.LineFromRecord(rec))
			require.NoError(t, err)
			l = append(l, string(b))
		}
		r := verifyExport(t, joinLines(l))
		assert.True(t, r.Valid)
		assert.Equal(t, hexHash(eventstore.Hash{0xaa}), r.AnchorPrevHash)
		assert.NotEqual(t, hexHash(f.recs[3].Hash), r.AnchorPrevHash)
	})
	t.Run("seq 1 is anchored at genesis", func(t *testing.T) {
		t.Parallel()
		// A first line claiming seq 1 with a non-zero prev_hash does not
		// get to choose its anchor.
		rec := f.recs[0]
		rec.PrevHash = eventstore.Hash{0xaa}
		rec.Hash = rec.ComputeHash()
		b, err := json.Marshal(export.LineFromRecord(rec))
		require.NoError(t, err)
		r := verifyExport(t, string(b)+"\n")
		require.False(t, r.Valid)
		assert.Equal(t, verify.KindLinkBroken, r.Detail.Kind)
		assert.Equal(t, strings.Repeat("0", 64), r.AnchorPrevHash)
	})
}

// TestExportMatchesStoreVerify tampers with a store, exports it and checks
// that the export verifier reports what the store verifier reports.
func TestExportMatchesStoreVerify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *pebble.DB)
	}{
		{name: "intact", tamper: func(*testing.T, *pebble.DB) {}},
		{name: "changed payload byte", tamper: func(t *testing.T, db *pebble.DB) {
			v := get(t, db, 5)
			i := bytes.Index(v, []byte("Session"))
			v[i] ^= 0x01
			set(t, db, 5, v)
		}},
		{name: "deleted record", tamper: func(t *testing.T, db *pebble.DB) {
			require.NoError(t, db.Delete(eventstore.RecordKey(chain, 5), pebble.Sync))
		}},
		{name: "swapped records", tamper: func(t *testing.T, db *pebble.DB) {
			a, b := get(t, db, 5), get(t, db, 6)
			set(t, db, 5, b)
			set(t, db, 6, a)
		}},
		{name: "swapped distant records", tamper: func(t *testing.T, db *pebble.DB) {
			a, b := get(t, db, 3), get(t, db, 8)
			set(t, db, 3, b)
			set(t, db, 8, a)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExportFixture(t, 10)
			tamper(t, f.dir, func(db *pebble.DB) { tc.tamper(t, db) })
			fromStore := verifyDir(t, f.dir)
			fromExport := verifyExport(t, joinLines(exportDir(t, f.dir, 0, 0)))
			assert.Equal(t, fromStore.Valid, fromExport.Valid)
			assert.Equal(t, fromStore.Detail, fromExport.Detail)
			assert.Equal(t, fromStore.BrokenAt, fromExport.BrokenAt)
			assert.Equal(t, fromStore.Chained, fromExport.Chained)
			assert.Equal(t, fromStore.Total, fromExport.Total)
		})
	}
}

func TestExportLongLine(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("reads a 64 MiB line")
	}
	f := newExportFixture(t, 3)
	lines := f.export(t, 0, 0)
	long := io.MultiReader(
		strings.NewReader(joinLines(lines[:2])),
		io.LimitReader(repeatReader('x'), verify.MaxExportLine+1),
		strings.NewReader("\n"+lines[2]+"\n"),
	)
	r, err := verify.Export(context.Background(), long)
	require.NoError(t, err)
	require.False(t, r.Valid)
	assert.Equal(t, verify.KindMalformed, r.Detail.Kind)
	assert.Equal(t, uint64(3), r.Detail.Seq)
	assert.Contains(t, r.Detail.Message, "line 3: longer than")
	assert.Equal(t, uint64(4), r.Total, "the long line is read to its end and counted")
}

type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestExportReadErrorsAndCancel(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t, 3)
	file := joinLines(f.export(t, 0, 0))

	boom := errors.New("disk gone")
	_, err := verify.Export(context.Background(), io.MultiReader(strings.NewReader(file), iotestErrReader{boom}))
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "line 4")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = verify.Export(ctx, strings.NewReader(file))
	require.ErrorIs(t, err, context.Canceled)
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestExportPythonScriptFromDoc runs the Python verifier printed in
// docs/export-format.md against exports written by WriteExport.
func TestExportPythonScriptFromDoc(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 is not installed (%v)", err)
	}
	doc, err := os.ReadFile("../docs/export-format.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "no python block in docs/export-format.md")
	dir := t.TempDir()
	script := filepath.Join(dir, "verify_export.py")
	require.NoError(t, os.WriteFile(script, m[1], 0o600))

	f := newExportFixture(t, 10)
	full := f.export(t, 0, 0)
	run := func(t *testing.T, name string, lines []string) (string, error) {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(joinLines(lines)), 0o600))
		out, err := exec.Command(python, script, path).CombinedOutput()
		return string(out), err
	}

	out, err := run(t, "full.jsonl", full)
	require.NoError(t, err, out)
	assert.Contains(t, out, "ok: chain default anchor seq 1 prev_hash "+strings.Repeat("0", 64))
	assert.Contains(t, out, fmt.Sprintf("head seq 10 hash %x", f.recs[9].Hash))

	out, err = run(t, "range.jsonl", f.export(t, 5, 9))
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("anchor seq 5 prev_hash %x", f.recs[3].Hash))
	assert.Contains(t, out, fmt.Sprintf("head seq 9 hash %x", f.recs[8].Hash))

	for _, tc := range exportTamperCases {
		if tc.kind == "" || tc.kind == verify.KindMalformed {
			continue // the script skips verify's spelling checks
		}
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, strings.ReplaceAll(tc.name, " ", "_")+".jsonl", tc.tamper(t, append([]string(nil), full...), f.recs))
			require.Error(t, err, "script accepted a file verify rejects as %s", tc.kind)
			assert.Contains(t, out, "line ")
		})
	}
}
