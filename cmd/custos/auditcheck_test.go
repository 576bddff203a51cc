package main_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/eventstore"
)

// TestAuditCheckExitCodes runs custos audit check on a clean store (0), on
// one where a record was appended behind the server's back by a key that
// never existed (1, listed), and on a folder with no store (2).
func TestAuditCheckExitCodes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	require.Equal(t, 0, runCLI(t, nil, "init", "--data", dir).code)
	clean := runCLI(t, nil, "audit", "check", "--data", dir)
	require.Equal(t, 0, clean.code, "%s%s", clean.stdout, clean.stderr)
	assert.JSONEq(t, `{"chain":"default","checked":1,"violations":[]}`, clean.stdout)

	// An ALLOW by a key the log never created, appended straight to the
	// store as someone with the disk (and no API key) could.
	store, err := eventstore.Open(eventstore.Options{Dir: dir})
	require.NoError(t, err)
	const forger = "key_01JFORGEDFORGEDFORGEDFORG"
	payload, err := domain.Encode(decision.Made{Decision: decision.Allow, Reason: "Access granted", PolicyName: "p", KeyID: forger})
	require.NoError(t, err)
	p, err := store.Enqueue(context.Background(), eventstore.DefaultChain, eventstore.Draft{Type: decision.TypeMade, Actor: forger, Payload: payload})
	require.NoError(t, err)
	_, err = p.Wait(context.Background())
	require.NoError(t, err)
	require.NoError(t, store.Close())

	dirty := runCLI(t, nil, "audit", "check", "--data", dir)
	require.Equal(t, 1, dirty.code, "%s%s", dirty.stdout, dirty.stderr)
	var report struct {
		Checked    uint64             `json:"checked"`
		Violations []domain.Violation `json:"violations"`
	}
	require.NoError(t, json.Unmarshal([]byte(dirty.stdout), &report))
	assert.Equal(t, uint64(2), report.Checked)
	require.Len(t, report.Violations, 1)
	assert.Equal(t, uint64(2), report.Violations[0].Seq)
	assert.Equal(t, forger, report.Violations[0].Actor)
	assert.Equal(t, domain.ViolationAllowByInvalidKey, report.Violations[0].Kind)

	missing := runCLI(t, nil, "audit", "check", "--data", filepath.Join(t.TempDir(), "nothing-here"))
	assert.Equal(t, 2, missing.code)
	assert.Empty(t, missing.stdout)
}
