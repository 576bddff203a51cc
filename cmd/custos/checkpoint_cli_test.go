package main_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// signedFolder runs init (verifier key to a file) and a few offline admin
// key resets, so that the chain has 4 signed records, and saves the
// latest checkpoint as an auditor would have fetched it.
func signedFolder(t *testing.T) (dir, vkeyFile, cpFile string, recs []eventstore.Record) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "data")
	vkeyFile = filepath.Join(root, "vkey")
	r := requireCode(t, 0, runCLI(t, nil, "init", "--data", dir, "--vkey-out", vkeyFile, "--origin", "custos.test/cli"))
	assert.Len(t, strings.Fields(r.stdout), 1, "stdout is the admin key alone")
	fi, err := os.Stat(signingKeyOf(dir))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	vkey, err := os.ReadFile(vkeyFile)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(vkey), "custos.test/cli+"), "%s", vkey)
	for range 3 {
		requireCode(t, 0, runCLI(t, nil, "admin-key", "reset", "--data", dir))
	}
	s, err := eventstore.Open(eventstore.Options{Dir: dir, ReadOnly: true})
	require.NoError(t, err)
	msg, err := s.SignedCheckpoint(context.Background(), eventstore.DefaultChain)
	require.NoError(t, err)
	require.NoError(t, s.Records(context.Background(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		recs = append(recs, r)
		return nil
	}))
	require.NoError(t, s.Close())
	cpFile = filepath.Join(root, "checkpoint")
	require.NoError(t, os.WriteFile(cpFile, msg, 0o644))
	require.Len(t, recs, 4)
	return dir, vkeyFile, cpFile, recs
}

func verifyReport(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), "%s%s", r.stdout, r.stderr)
	return m
}

func rawPebble(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	fn(db)
	require.NoError(t, db.Close())
}

func putRecord(t *testing.T, db *pebble.DB, r eventstore.Record) {
	t.Helper()
	require.NoError(t, db.Set(eventstore.RecordKey(r.Chain, r.Seq), append(r.Encode(nil), r.Hash[:]...), pebble.Sync))
	head := make([]byte, 8, 40)
	for i := range 8 {
		head[7-i] = byte(r.Seq >> (8 * i))
	}
	require.NoError(t, db.Set(eventstore.HeadKey(r.Chain), append(head, r.Hash[:]...), pebble.Sync))
}

func dropTreeOf(t *testing.T, db *pebble.DB) {
	t.Helper()
	require.NoError(t, db.DeleteRange(eventstore.TreeKey(eventstore.DefaultChain, 0), eventstore.TreeKey(eventstore.DefaultChain, math.MaxUint64), pebble.Sync))
}

// TestVerifyAndServeCatchARewriteWithRecomputedHashes is issue 18's
// attack: record 2 rewritten (a key's scope), every later hash and the
// head recomputed, the tree rebuilt. The chain alone verifies; verify with
// the checkpoint and serve at start do not accept it.
func TestVerifyAndServeCatchARewriteWithRecomputedHashes(t *testing.T) {
	t.Parallel()
	dir, vkey, cp, recs := signedFolder(t)
	ok := verifyReport(t, requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir, "--checkpoint", cp, "--vkey", vkey)))
	assert.Equal(t, true, ok["checkpoint"].(map[string]any)["contained"])

	rawPebble(t, dir, func(db *pebble.DB) {
		prev := recs[0].Hash
		for i := 1; i < len(recs); i++ {
			r := recs[i]
			if i == 1 {
				r.Payload = []byte(strings.Replace(string(r.Payload), `"admin"`, `"read"`, 1))
			}
			r.PrevHash = prev
			r.Hash = r.ComputeHash()
			putRecord(t, db, r)
			prev = r.Hash
		}
		dropTreeOf(t, db)
	})
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir))
	broken := verifyReport(t, requireCode(t, 1, runCLI(t, nil, "verify", "--data", dir, "--checkpoint", cp, "--vkey", vkey)))
	assert.Equal(t, "checkpoint_mismatch", broken["detail"].(map[string]any)["kind"])
	assert.Equal(t, false, broken["checkpoint"].(map[string]any)["contained"])

	srv := requireCode(t, 1, runCLI(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0"))
	assert.Contains(t, srv.stderr, "contradicts its signed checkpoint")
}

// TestServeRefusesAForgedAppend: a record appended to the folder with a
// correct link and the head moved, as someone without the signing key
// could, is covered by no signature.
func TestServeRefusesAForgedAppend(t *testing.T) {
	t.Parallel()
	dir, vkey, cp, recs := signedFolder(t)
	rawPebble(t, dir, func(db *pebble.DB) {
		last := recs[len(recs)-1]
		r := last
		r.Seq, r.PrevHash = last.Seq+1, last.Hash
		r.Hash = r.ComputeHash()
		putRecord(t, db, r)
		dropTreeOf(t, db)
	})
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir, "--checkpoint", cp, "--vkey", vkey))
	srv := requireCode(t, 1, runCLI(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0"))
	assert.Contains(t, srv.stderr, "records not covered by a signed checkpoint")
	assert.Contains(t, srv.stderr, "records 5 to 5")
}

// TestVerifyCatchesTruncation: the tail cut below the checkpoint, head
// moved back.
func TestVerifyCatchesTruncation(t *testing.T) {
	t.Parallel()
	dir, vkey, cp, recs := signedFolder(t)
	rawPebble(t, dir, func(db *pebble.DB) {
		require.NoError(t, db.Delete(eventstore.RecordKey(eventstore.DefaultChain, 4), pebble.Sync))
		putRecord(t, db, recs[2])
	})
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", dir))
	broken := verifyReport(t, requireCode(t, 1, runCLI(t, nil, "verify", "--data", dir, "--checkpoint", cp, "--vkey", vkey)))
	assert.Equal(t, "checkpoint_truncated", broken["detail"].(map[string]any)["kind"])
	srv := requireCode(t, 1, runCLI(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0"))
	assert.Contains(t, srv.stderr, "truncated")

	other := filepath.Join(t.TempDir(), "vkey")
	requireCode(t, 0, runCLI(t, nil, "init", "--data", filepath.Join(t.TempDir(), "d2"), "--vkey-out", other))
	bad := requireCode(t, 2, runCLI(t, nil, "verify", "--data", dir, "--checkpoint", cp, "--vkey", other))
	assert.Contains(t, bad.stderr, "no valid signature")
}

// TestServeRefusesAStoreWithoutItsKey: an existing store is never given a
// new key silently.
func TestServeRefusesAStoreWithoutItsKey(t *testing.T) {
	t.Parallel()
	dir, _, _, _ := signedFolder(t)
	require.NoError(t, os.Rename(signingKeyOf(dir), signingKeyOf(dir)+".moved"))
	srv := requireCode(t, 1, runCLI(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0"))
	assert.Contains(t, srv.stderr, "no checkpoint signing key")
	inside := requireCode(t, 1, runCLI(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--signing-key", filepath.Join(dir, "key")))
	assert.Contains(t, inside.stderr, "inside the data folder")
}

// TestInitRefusesASigningKeyLinkedIntoTheData: a key path that reaches the
// data folder through a symlink is inside it too, and no key is written.
func TestInitRefusesASigningKeyLinkedIntoTheData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// paths returns the --data and --signing-key arguments, and the
		// key file as it lands in the real data folder.
		paths func(t *testing.T, root string) (data, key, landed string)
	}{
		{"key through a link to the data folder", func(t *testing.T, root string) (string, string, string) {
			data := filepath.Join(root, "data")
			require.NoError(t, os.Mkdir(data, 0o700))
			require.NoError(t, os.Symlink(data, filepath.Join(root, "link")))
			return data, filepath.Join(root, "link", "key"), filepath.Join(data, "key")
		}},
		{"data folder through a link, key in its target", func(t *testing.T, root string) (string, string, string) {
			real := filepath.Join(root, "real")
			require.NoError(t, os.Mkdir(real, 0o700))
			require.NoError(t, os.Symlink(real, filepath.Join(root, "data")))
			return filepath.Join(root, "data"), filepath.Join(real, "key"), filepath.Join(real, "key")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, key, landed := tc.paths(t, t.TempDir())
			r := requireCode(t, 2, runCLI(t, nil, "init", "--data", data, "--signing-key", key))
			assert.Contains(t, r.stderr, "inside the data folder")
			_, err := os.Lstat(landed)
			assert.ErrorIs(t, err, os.ErrNotExist, "a signing key was written into the data folder")
		})
	}
}
