package main_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestVerifyExportChainFlag checks that verify --export names the chain it
// checked, and that --chain, when given, is the chain the file must hold.
func TestVerifyExportChainFlag(t *testing.T) {
	t.Parallel()
	dir, _, _, recs := signedFolder(t)
	out := filepath.Join(t.TempDir(), "export.jsonl")
	requireCode(t, 0, runCLI(t, nil, "export", "--data", dir, "--out", out))

	m := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out)))
	assert.Equal(t, "default", m["chain"])
	m = verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--chain", "default")))
	assert.Equal(t, "default", m["chain"])

	m = verifyReport(t, requireCode(t, 1, runCLI(t, nil, "verify", "--export", out, "--chain", "tenant-b")))
	assert.Equal(t, "tenant-b", m["chain"])
	detail := m["detail"].(map[string]any)
	assert.Equal(t, "chain_mismatch", detail["kind"])
	assert.Equal(t, recs[0].ID, m["broken_at"])
	assert.EqualValues(t, 1, m["broken_at_seq"])
}
