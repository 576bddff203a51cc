package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExportCarriesItsCheckpoint exports a signed chain offline: the
// checkpoint written beside the file verifies it with the verifier key
// alone, and the same checkpoint catches the file cut short. A range
// export gets no checkpoint (it would not contain the signed tree).
func TestExportCarriesItsCheckpoint(t *testing.T) {
	t.Parallel()
	dir, vkeyFile, cpFile, _ := signedFolder(t)
	out := filepath.Join(t.TempDir(), "chain.jsonl")
	requireCode(t, 0, runCLI(t, nil, "export", "--data", dir, "--out", out))
	beside, err := os.ReadFile(out + ".checkpoint")
	require.NoError(t, err)
	saved, err := os.ReadFile(cpFile)
	require.NoError(t, err)
	assert.Equal(t, string(saved), string(beside), "the latest signed checkpoint, byte for byte")

	report := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint", "--vkey", vkeyFile)))
	assert.Equal(t, true, report["checkpoint"].(map[string]any)["contained"])

	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.SplitAfter(strings.TrimSuffix(string(raw), "\n"), "\n")
	cut := filepath.Join(t.TempDir(), "cut.jsonl")
	require.NoError(t, os.WriteFile(cut, []byte(strings.Join(lines[:len(lines)-1], "")), 0o644))
	requireCode(t, 1, runCLI(t, nil, "verify", "--export", cut, "--checkpoint", out+".checkpoint", "--vkey", vkeyFile))

	part := filepath.Join(t.TempDir(), "part.jsonl")
	requireCode(t, 0, runCLI(t, nil, "export", "--data", dir, "--out", part, "--to-seq", "2"))
	_, err = os.Stat(part + ".checkpoint")
	assert.ErrorIs(t, err, os.ErrNotExist)
}
