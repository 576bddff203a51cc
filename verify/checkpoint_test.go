package verify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/export"
	"github.com/custos-dev/custos/verify"
)

type signedFixture struct {
	dir    string
	recs   []eventstore.Record
	cp     checkpoint.Checkpoint // signed at size 20 of 30
	signer *checkpoint.Signer
}

// newSignedFixture appends 30 records with a signer and keeps the
// checkpoint the store showed after the first 20, as an auditor would
// have fetched it then. payload varies the records, for a fork.
func newSignedFixture(t *testing.T, signer *checkpoint.Signer, payload string) signedFixture {
	t.Helper()
	if signer == nil {
		skey, _, err := checkpoint.GenerateKey(rand.Reader, "custos.test/verify")
		require.NoError(t, err)
		signer, err = checkpoint.NewSigner(skey)
		require.NoError(t, err)
	}
	f := signedFixture{dir: t.TempDir(), signer: signer}
	s, err := eventstore.Open(eventstore.Options{Dir: f.dir, CreateIfMissing: true, Signer: signer})
	require.NoError(t, err)
	v, err := checkpoint.NewVerifier(signer.VerifierKey())
	require.NoError(t, err)
	for i := range 30 {
		r, err := s.Append(context.Background(), chain, eventstore.Draft{Type: "test.appended", Actor: "system:test", Payload: fmt.Appendf(nil, `{"n":%d,"p":%q}`, i+1, payload)})
		require.NoError(t, err)
		f.recs = append(f.recs, r...)
		if i == 19 {
			msg, err := s.SignedCheckpoint(context.Background(), chain)
			require.NoError(t, err)
			f.cp, err = v.Open(msg, chain)
			require.NoError(t, err)
		}
	}
	require.NoError(t, s.Close())
	return f
}

func verifyDirAgainst(t *testing.T, dir string, cp checkpoint.Checkpoint) verify.Report {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	r, err := verify.Store(context.Background(), s, chain, verify.WithCheckpoint(cp))
	require.NoError(t, err)
	return r
}

func verifyExportAgainst(t *testing.T, dir string, cp checkpoint.Checkpoint) verify.Report {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = export.Write(context.Background(), &buf, s, chain, 1, 0, export.JSONPayload)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r, err := verify.Export(context.Background(), &buf, verify.WithCheckpoint(cp))
	require.NoError(t, err)
	return r
}

// rewriteFrom rewrites record from (a read key's scope becomes admin) and
// recomputes every later hash, link and the head: the attack of issue 18
// that the chain alone does not catch.
func rewriteFrom(t *testing.T, db *pebble.DB, recs []eventstore.Record, from int) {
	t.Helper()
	prev := recs[from-2].Hash
	for i := from - 1; i < len(recs); i++ {
		r := recs[i]
		if i == from-1 {
			r.Payload = []byte(`{"scope":"admin"}`)
		}
		r.PrevHash = prev
		r.Hash = r.ComputeHash()
		set(t, db, r.Seq, stored(r))
		prev = r.Hash
	}
	setHead(t, db, uint64(len(recs)), prev)
}

func setHead(t *testing.T, db *pebble.DB, seq uint64, h eventstore.Hash) {
	t.Helper()
	v := make([]byte, 8, 40)
	for i := range 8 {
		v[7-i] = byte(seq >> (8 * i))
	}
	require.NoError(t, db.Set(eventstore.HeadKey(chain), append(v, h[:]...), pebble.Sync))
}

func TestVerifyAgainstCheckpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		attack func(t *testing.T, f signedFixture, db *pebble.DB)
		// cp replaces the fixture's checkpoint (a fork).
		cp   func(t *testing.T, f signedFixture) checkpoint.Checkpoint
		kind string // "" = valid
	}{
		{name: "intact log extends the checkpoint"},
		{name: "rewrite after the checkpoint is not its business", attack: func(t *testing.T, f signedFixture, db *pebble.DB) {
			rewriteFrom(t, db, f.recs, 25)
		}},
		{name: "rewrite of record 15 with recomputed hashes and head", attack: func(t *testing.T, f signedFixture, db *pebble.DB) {
			rewriteFrom(t, db, f.recs, 15)
		}, kind: verify.KindCheckpointMismatch},
		{name: "truncation below the checkpoint", attack: func(t *testing.T, f signedFixture, db *pebble.DB) {
			for seq := uint64(19); seq <= 30; seq++ {
				require.NoError(t, db.Delete(eventstore.RecordKey(chain, seq), pebble.Sync))
			}
			setHead(t, db, 18, f.recs[17].Hash)
		}, kind: verify.KindCheckpointTruncated},
		{name: "forked root signed by the same key", cp: func(t *testing.T, f signedFixture) checkpoint.Checkpoint {
			return newSignedFixture(t, f.signer, "other history").cp
		}, kind: verify.KindCheckpointMismatch},
		{name: "checkpoint of another chain", cp: func(t *testing.T, f signedFixture) checkpoint.Checkpoint {
			cp := f.cp
			cp.Origin = checkpoint.Origin(f.signer.Name(), "tenant-b")
			return cp
		}, kind: verify.KindCheckpointMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSignedFixture(t, nil, "")
			if tc.attack != nil {
				tamper(t, f.dir, func(db *pebble.DB) { tc.attack(t, f, db) })
			}
			cp := f.cp
			if tc.cp != nil {
				cp = tc.cp(t, f)
			}
			plain := verifyDir(t, f.dir)
			for name, r := range map[string]verify.Report{"data": verifyDirAgainst(t, f.dir, cp), "export": verifyExportAgainst(t, f.dir, cp)} {
				require.NotNil(t, r.Checkpoint, name)
				assert.Equal(t, uint64(20), r.Checkpoint.Size, name)
				if tc.kind == "" {
					require.True(t, r.Valid, "%s: %+v", name, r.Detail)
					assert.True(t, r.Checkpoint.Contained, name)
					assert.Equal(t, r.Checkpoint.Root, r.Checkpoint.RecomputedRoot, name)
					continue
				}
				require.False(t, r.Valid, name)
				require.True(t, plain.Valid || tc.kind == verify.KindCheckpointTruncated, "the chain alone does not see it")
				assert.Equal(t, tc.kind, r.Detail.Kind, "%s: %+v", name, r.Detail)
				assert.Equal(t, uint64(20), r.Detail.Seq, name)
				if tc.name != "checkpoint of another chain" {
					assert.False(t, r.Checkpoint.Contained, name)
				}
			}
		})
	}
}

func TestVerifyExportRangeAgainstCheckpointIsRefused(t *testing.T) {
	t.Parallel()
	f := newSignedFixture(t, nil, "")
	lines := exportDir(t, f.dir, 5, 0)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l + "\n")
	}
	_, err := verify.Export(context.Background(), &buf, verify.WithCheckpoint(f.cp))
	require.ErrorContains(t, err, "from genesis")
}

// TestVerifyEmptyExportAgainstCheckpoint: an empty file names no chain, so
// against a checkpoint it is short of it (checkpoint_truncated), unless the
// checkpoint's size is 0 or --chain names another chain than its origin's
// (docs/export-format.md, "Lines").
func TestVerifyEmptyExportAgainstCheckpoint(t *testing.T) {
	t.Parallel()
	f := newSignedFixture(t, nil, "")
	empty := f.cp
	empty.Size, empty.Root = 0, sha256.Sum256(nil)
	cases := []struct {
		name string
		cp   checkpoint.Checkpoint
		opts []verify.Option
		kind string // "" = valid
	}{
		{"checkpoint of 20 records", f.cp, nil, verify.KindCheckpointTruncated},
		{"checkpoint of 20 records, --chain its chain", f.cp, []verify.Option{verify.ExpectChain(chain)}, verify.KindCheckpointTruncated},
		{"checkpoint of 20 records, --chain another", f.cp, []verify.Option{verify.ExpectChain("tenant-b")}, verify.KindCheckpointMismatch},
		{"checkpoint of the empty tree", empty, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := verify.Export(context.Background(), strings.NewReader(""), append(tc.opts, verify.WithCheckpoint(tc.cp))...)
			require.NoError(t, err)
			require.NotNil(t, r.Checkpoint)
			if tc.kind == "" {
				require.True(t, r.Valid, "%+v", r.Detail)
				assert.True(t, r.Checkpoint.Contained)
				return
			}
			require.False(t, r.Valid)
			assert.Equal(t, tc.kind, r.Detail.Kind, "%+v", r.Detail)
			assert.Equal(t, tc.cp.Size, r.Detail.Seq)
		})
	}
}
