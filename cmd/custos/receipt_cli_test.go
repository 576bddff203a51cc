package main_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// receiptOf builds the receipt of record seq from a signed data folder,
// as GET /v1/audit/events/{event_id}/receipt does.
func receiptOf(t *testing.T, dir string, seq uint64) []byte {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	rec, err := s.Get(ctx, eventstore.DefaultChain, seq)
	require.NoError(t, err)
	msg, err := s.SignedCheckpoint(ctx, eventstore.DefaultChain)
	require.NoError(t, err)
	cp, err := checkpoint.Parse(checkpoint.Text(msg))
	require.NoError(t, err)
	p, err := s.InclusionProof(ctx, eventstore.DefaultChain, seq-1, cp.Size)
	require.NoError(t, err)
	r := checkpoint.Receipt{Extra: rec.Encode(nil), Index: seq - 1, Checkpoint: msg}
	for _, h := range p {
		r.Proof = append(r.Proof, [32]byte(h))
	}
	return r.Format()
}

// TestVerifyReceiptCLI checks custos verify --receipt's exit codes: 0 for
// a receipt of every record, 1 for a tampered one, 2 when it cannot run.
func TestVerifyReceiptCLI(t *testing.T) {
	t.Parallel()
	dir, vkeyFile, _, recs := signedFolder(t)
	root := t.TempDir()
	for _, rec := range recs {
		file := filepath.Join(root, "ok.tlog-proof")
		require.NoError(t, os.WriteFile(file, receiptOf(t, dir, rec.Seq), 0o644))
		m := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--receipt", file, "--vkey", vkeyFile)))
		assert.Equal(t, true, m["valid"])
		got := m["receipt"].(map[string]any)
		assert.Equal(t, rec.ID, got["id"])
		assert.EqualValues(t, rec.Seq, got["seq"])
		assert.Equal(t, "custos.test/cli/default", got["origin"])
	}

	good := receiptOf(t, dir, 2)
	bad := bytes.Replace(good, []byte("index 1\n"), []byte("index 2\n"), 1)
	require.NotEqual(t, good, bad)
	file := filepath.Join(root, "bad.tlog-proof")
	require.NoError(t, os.WriteFile(file, bad, 0o644))
	m := verifyReport(t, requireCode(t, 1, runCLI(t, nil, "verify", "--receipt", file, "--vkey", vkeyFile)))
	assert.Equal(t, false, m["valid"])
	assert.Contains(t, m["problem"], "index 2")

	requireCode(t, 2, runCLI(t, nil, "verify", "--receipt", filepath.Join(root, "missing"), "--vkey", vkeyFile))
	requireCode(t, 2, runCLI(t, nil, "verify", "--receipt", file, "--vkey", "not a key"))
	requireCode(t, 2, runCLI(t, nil, "verify", "--receipt", file))
	requireCode(t, 2, runCLI(t, nil, "verify", "--receipt", file, "--vkey", vkeyFile, "--data", dir))
}
