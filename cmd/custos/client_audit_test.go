package main_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditEvent is one event of audit events -o json.
type auditEvent struct {
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	Hash    string          `json:"hash"`
	Payload json.RawMessage `json:"payload"`
}

type auditPage struct {
	Events       []auditEvent `json:"events"`
	NextAfterSeq *uint64      `json:"next_after_seq"`
}

func TestAuditEventsAndExportCommands(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dataDir)
	admin := adminKeyOf(t, srv)
	env := clientEnv(srv, admin)
	cli := func(args ...string) result { return runCLI(t, env, args...) }

	code, body := srv.do(t, http.MethodPost, "/v1/policies", admin,
		`{"name":"lending-policy","agent_role":"loan_officer","allowed_sources":["crm"]}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	requireCode(t, 0, cli("agents", "register", "--id", "loan-agent", "--role", "loan_officer"))
	requireCode(t, 0, cli("agents", "approve", "loan-agent"))
	evaluate := func(source, session string) (decision, reason string) {
		code, body := srv.do(t, http.MethodPost, "/v1/context/evaluate", admin,
			`{"agent_role":"loan_officer","agent_id":"loan-agent","user_id":"u-1","source_id":"`+source+
				`","sensitivity_level":"low","session_id":"`+session+`"}`)
		require.Equal(t, http.StatusOK, code, string(body))
		var d struct{ Decision, Reason string }
		require.NoError(t, json.Unmarshal(body, &d))
		return d.Decision, d.Reason
	}
	for range 3 {
		d, _ := evaluate("crm", "s-allow")
		require.Equal(t, "ALLOW", d)
	}
	d, denyReason := evaluate("hr_records", "s-deny")
	require.Equal(t, "DENY", d)
	require.NotEmpty(t, denyReason)

	head := decodeJSON[struct {
		HeadSeq  uint64 `json:"head_seq"`
		HeadHash string `json:"head_hash"`
	}](t, requireCode(t, 0, cli("audit", "verify", "-o", "json")))
	require.Greater(t, head.HeadSeq, uint64(6))

	t.Run("events table shows decisions with their reason", func(t *testing.T) {
		r := requireCode(t, 0, cli("audit", "events", "--type", "decision.made"))
		assert.Regexp(t, `(?m)^SEQ\s+TIME\s+TYPE\s+ACTOR\s+DECISION\s+SOURCE_ID\s+REASON$`, r.stdout)
		assert.Regexp(t, `(?m)^\d+\s+\d{4}-\d\d-\d\dT\S+Z\s+decision\.made\s+key_\w+\s+ALLOW\s+crm\s+Access granted$`, r.stdout)
		assert.Regexp(t, `(?m)^\d+\s+\S+\s+decision\.made\s+key_\w+\s+DENY\s+hr_records\s+`+regexp.QuoteMeta(denyReason)+`$`, r.stdout)
		assert.Equal(t, 1+4, strings.Count(r.stdout, "\n"), "a header and four decisions: %s", r.stdout)
		assert.Empty(t, r.stderr, "the last page")

		deny := requireCode(t, 0, cli("audit", "events", "--decision", "deny", "--session-id", "s-deny"))
		assert.Contains(t, deny.stdout, denyReason)
		assert.NotContains(t, deny.stdout, "ALLOW")

		// Other events show "-" for the decision columns.
		keys := requireCode(t, 0, cli("audit", "events", "--type", "key.created"))
		assert.Regexp(t, `(?m)^1\s+\S+\s+key\.created\s+system:\S+\s+-\s+-\s+-$`, keys.stdout)

		none := requireCode(t, 0, cli("audit", "events", "--session-id", "no-such-session"))
		assert.Equal(t, 1, strings.Count(none.stdout, "\n"), "only the header: %s", none.stdout)
	})

	t.Run("events pages", func(t *testing.T) {
		r := requireCode(t, 0, cli("audit", "events", "--limit", "2"))
		assert.Equal(t, 3, strings.Count(r.stdout, "\n"), r.stdout)
		assert.Contains(t, r.stderr, "--after-seq 2")

		page := decodeJSON[auditPage](t, requireCode(t, 0, cli("audit", "events", "--limit", "2", "--after-seq", "2", "-o", "json")))
		require.Len(t, page.Events, 2)
		assert.Equal(t, uint64(3), page.Events[0].Seq)
		require.NotNil(t, page.NextAfterSeq)
		assert.Equal(t, uint64(4), *page.NextAfterSeq)

		last := decodeJSON[auditPage](t, requireCode(t, 0, cli("audit", "events", "--after-seq", "2", "-o", "json")))
		assert.Nil(t, last.NextAfterSeq)
		assert.Len(t, last.Events, int(head.HeadSeq)-2)
		raw := requireCode(t, 0, cli("audit", "events", "--after-seq", "2", "-o", "json"))
		assert.Contains(t, raw.stdout, `"next_after_seq": null`)
	})

	t.Run("events --all -o json is one JSON line per event", func(t *testing.T) {
		r := requireCode(t, 0, cli("audit", "events", "--all", "--limit", "2", "-o", "json"))
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, int(head.HeadSeq))
		for i, line := range lines {
			var e auditEvent
			require.NoError(t, json.Unmarshal([]byte(line), &e), "line %d: %s", i+1, line)
			assert.Equal(t, uint64(i+1), e.Seq)
			assert.Len(t, e.Hash, 64)
		}
		var e auditEvent
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &e))
		assert.Equal(t, head.HeadHash, e.Hash)
		assert.Empty(t, r.stderr)

		denials := requireCode(t, 0, cli("audit", "events", "--all", "--decision", "DENY", "-o", "json"))
		require.Equal(t, 1, strings.Count(denials.stdout, "\n"), denials.stdout)
		assert.Contains(t, denials.stdout, denyReason)

		table := requireCode(t, 0, cli("audit", "events", "--all", "--limit", "3"))
		assert.Equal(t, 1+int(head.HeadSeq), strings.Count(table.stdout, "\n"), table.stdout)
		assert.Empty(t, table.stderr)
	})

	t.Run("export then verify --export", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "chain.jsonl")
		r := requireCode(t, 0, cli("audit", "export", "--out", out))
		assert.Regexp(t, `(?m)^out:\s+`+regexp.QuoteMeta(out)+`$`, r.stdout)
		info, err := os.Stat(out)
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^bytes:\s+`+strconv.FormatInt(info.Size(), 10)+`$`, r.stdout)
		assert.Regexp(t, `(?m)^checkpoint:\s+`+regexp.QuoteMeta(out+".checkpoint")+`$`, r.stdout)

		// The checkpoint beside it verifies the file against the verifier
		// key pinned offline (from the signing key, not the server), and
		// catches the file cut short.
		vkeyFile := filepath.Join(dir, "vkey")
		pinned := requireCode(t, 0, runCLI(t, nil, "vkey", "--data", dataDir))
		require.NoError(t, os.WriteFile(vkeyFile, []byte(pinned.stdout), 0o644))
		withCp := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint", "--vkey", vkeyFile)))
		assert.Equal(t, true, withCp["checkpoint"].(map[string]any)["contained"])
		raw, err := os.ReadFile(out)
		require.NoError(t, err)
		lines := strings.SplitAfter(strings.TrimSuffix(string(raw), "\n"), "\n")
		cut := filepath.Join(dir, "cut.jsonl")
		require.NoError(t, os.WriteFile(cut, []byte(strings.Join(lines[:len(lines)-1], "")), 0o644))
		requireCode(t, 1, runCLI(t, nil, "verify", "--export", cut, "--checkpoint", out+".checkpoint", "--vkey", vkeyFile))

		v := requireCode(t, 0, runCLI(t, nil, "verify", "--export", out))
		report := decodeJSON[struct {
			Valid    bool   `json:"valid"`
			Total    uint64 `json:"total"`
			HeadHash string `json:"head_hash"`
		}](t, v)
		assert.True(t, report.Valid)
		assert.Equal(t, head.HeadSeq, report.Total)
		assert.Equal(t, head.HeadHash, report.HeadHash)

		// --out never overwrites.
		before, err := os.ReadFile(out)
		require.NoError(t, err)
		again := requireCode(t, 2, cli("audit", "export", "--out", out))
		assert.Contains(t, again.stderr, "already exists")
		after, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, before, after)

		// A range verifies from its anchor; the summary as JSON.
		ranged := filepath.Join(dir, "range.jsonl")
		sum := decodeJSON[struct {
			Out    string `json:"out"`
			Format string `json:"format"`
			Bytes  int64  `json:"bytes"`
		}](t, requireCode(t, 0, cli("audit", "export", "--from-seq", "2", "--to-seq", "4", "--out", ranged, "-o", "json")))
		assert.Equal(t, ranged, sum.Out)
		assert.Equal(t, "jsonl", sum.Format)
		assert.NoFileExists(t, ranged+".checkpoint", "a range does not contain the signed tree")

		// The whole chain as JSON names the checkpoint; one left in the
		// way refuses the export before any request.
		whole := filepath.Join(dir, "whole.jsonl")
		wsum := decodeJSON[struct {
			Checkpoint string `json:"checkpoint"`
		}](t, requireCode(t, 0, cli("audit", "export", "--out", whole, "-o", "json")))
		assert.Equal(t, whole+".checkpoint", wsum.Checkpoint)
		blocked := filepath.Join(dir, "blocked.jsonl")
		require.NoError(t, os.WriteFile(blocked+".checkpoint", nil, 0o644))
		assert.Contains(t, requireCode(t, 2, cli("audit", "export", "--out", blocked)).stderr, blocked+".checkpoint: already exists")
		assert.NoFileExists(t, blocked)
		report = decodeJSON[struct {
			Valid    bool   `json:"valid"`
			Total    uint64 `json:"total"`
			HeadHash string `json:"head_hash"`
		}](t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", ranged)))
		assert.True(t, report.Valid)
		assert.Equal(t, uint64(3), report.Total)

		// stdout by default; CSV with filters.
		sheet := requireCode(t, 0, cli("audit", "export", "--format", "csv", "--type", "decision.made", "--decision", "DENY"))
		rows, err := csv.NewReader(strings.NewReader(sheet.stdout)).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 2, sheet.stdout)
		assert.Equal(t, "seq", rows[0][0])
		assert.Equal(t, []string{"DENY", denyReason}, rows[1][5:7])

		// A refused export leaves no file behind.
		refused := filepath.Join(dir, "refused.jsonl")
		denied := requireCode(t, 2, runCLI(t, clientEnv(srv, "cst_garbage"), "audit", "export", "--out", refused))
		assert.Contains(t, denied.stderr, "403 Forbidden")
		assert.NoFileExists(t, refused)
		assert.NoFileExists(t, refused+".checkpoint")
	})

	t.Run("bad flags exit 2 before any request", func(t *testing.T) {
		// The server is unreachable: a request would fail differently.
		offline := []string{"CUSTOS_SERVER=http://127.0.0.1:1", "CUSTOS_API_KEY=x"}
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{"decision", []string{"audit", "events", "--decision", "MAYBE"}, []string{`--decision "MAYBE": want ALLOW or DENY`}},
			{"export decision", []string{"audit", "export", "--decision", "yes"}, []string{`--decision "yes": want ALLOW or DENY`}},
			{"from", []string{"audit", "events", "--from", "tuesday"}, []string{`--from "tuesday": want an RFC 3339 time`}},
			{"to before from", []string{"audit", "events", "--from", "2030-01-02T00:00:00Z", "--to", "2030-01-01T00:00:00Z"},
				[]string{"--to must not be before --from"}},
			{"limit", []string{"audit", "events", "--limit", "0"}, []string{"--limit 0: want 1 to 1000"}},
			{"format", []string{"audit", "export", "--format", "xml"}, []string{`--format "xml": want jsonl or csv`}},
			{"seqs", []string{"audit", "export", "--from-seq", "5", "--to-seq", "4"}, []string{"--to-seq 4: want 0 (the head) or 5 to"}},
			{"every problem at once", []string{"audit", "events", "--decision", "no", "--to", "soon", "--limit", "5000"},
				[]string{`--decision "no"`, `--to "soon"`, "--limit 5000"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := requireCode(t, 2, runCLI(t, offline, tc.args...))
				assert.Empty(t, r.stdout)
				for _, want := range tc.want {
					assert.Contains(t, r.stderr, want)
				}
				assert.NotContains(t, r.stderr, "cannot reach")
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %s", r.stderr)
			})
		}
		// The checks need no key either.
		r := requireCode(t, 2, runCLI(t, []string{"CUSTOS_API_KEY="}, "audit", "events", "--decision", "MAYBE"))
		assert.Contains(t, r.stderr, "want ALLOW or DENY")
	})

	t.Run("unreachable server", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "chain.jsonl")
		r := requireCode(t, 2, runCLI(t, []string{"CUSTOS_SERVER=http://127.0.0.1:1", "CUSTOS_API_KEY=x"},
			"audit", "export", "--out", out))
		assert.Contains(t, r.stderr, "cannot reach the custos server at http://127.0.0.1:1")
		assert.NoFileExists(t, out)
		r = requireCode(t, 2, runCLI(t, []string{"CUSTOS_SERVER=http://127.0.0.1:1", "CUSTOS_API_KEY=x"},
			"audit", "events", "--all"))
		assert.Contains(t, r.stderr, "cannot reach the custos server")
	})
}
