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

// TestExportCarriesTheCosignedCheckpoint: with serve running with a
// witness, audit export writes the cosigned checkpoint beside the file;
// after serve stopped, the offline export carries the checkpoint the
// witness cosigned (kept in DATA.cosigned), even when later offline
// commits signed newer ones. Both pairs verify with the witness's key as
// well. A kept file that is not a checkpoint is passed over with a
// warning.
func TestExportCarriesTheCosignedCheckpoint(t *testing.T) {
	t.Parallel()
	c := newCosignedSetup(t, "custos.test/export")
	online := filepath.Join(t.TempDir(), "online.jsonl")
	requireCode(t, 0, runCLI(t, clientEnv(c.srv, c.admin), "audit", "export", "--out", online))
	onlineCp, err := os.ReadFile(online + ".checkpoint")
	require.NoError(t, err)
	assert.Contains(t, string(onlineCp), "— witness.test/w1 ")
	requireCode(t, 0, runCLI(t, nil, "verify", "--export", online, "--checkpoint", online+".checkpoint",
		"--vkey", c.vkeyFile, "--witness-vkey", c.w.vkey))
	c.srv.stop(t)

	requireCode(t, 0, runCLI(t, nil, "admin-key", "reset", "--data", c.dir))
	kept, err := os.ReadFile(c.dir + ".cosigned")
	require.NoError(t, err)
	require.Contains(t, string(kept), "— witness.test/w1 ")

	out := filepath.Join(t.TempDir(), "chain.jsonl")
	requireCode(t, 0, runCLI(t, nil, "export", "--data", c.dir, "--out", out))
	beside, err := os.ReadFile(out + ".checkpoint")
	require.NoError(t, err)
	assert.Equal(t, string(kept), string(beside), "the cosigned checkpoint, byte for byte")
	report := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--export", out, "--checkpoint", out+".checkpoint",
		"--vkey", c.vkeyFile, "--witness-vkey", c.w.vkey)))
	assert.Equal(t, true, report["checkpoint"].(map[string]any)["contained"])
	assert.EqualValues(t, c.cosigned, report["checkpoint"].(map[string]any)["size"])

	// --cosigned names the file; one that holds no checkpoint is passed
	// over: the latest signed checkpoint, which no witness cosigned.
	garbage := filepath.Join(c.base, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("not a checkpoint\n"), 0o600))
	plain := filepath.Join(t.TempDir(), "chain.jsonl")
	r := requireCode(t, 0, runCLI(t, nil, "export", "--data", c.dir, "--out", plain, "--cosigned", garbage))
	assert.Contains(t, r.stderr, "warning: the cosigned checkpoint "+garbage+" is not a checkpoint")
	signed, err := os.ReadFile(plain + ".checkpoint")
	require.NoError(t, err)
	assert.NotContains(t, string(signed), "— witness.test/")
	requireCode(t, 0, runCLI(t, nil, "verify", "--export", plain, "--checkpoint", plain+".checkpoint", "--vkey", c.vkeyFile))
	requireCode(t, 2, runCLI(t, nil, "verify", "--export", plain, "--checkpoint", plain+".checkpoint", "--vkey", c.vkeyFile, "--witness-vkey", c.w.vkey))
}
