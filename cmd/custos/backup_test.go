package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyIDs lists the key ids a server answers GET /v1/keys with.
func keyIDs(t *testing.T, s *server, admin string) map[string]bool {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/v1/keys", admin, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var list []struct {
		KeyID string `json:"key_id"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	ids := make(map[string]bool, len(list))
	for _, k := range list {
		ids[k.KeyID] = true
	}
	return ids
}

// writer creates keys on s until stop is closed and records the ids the
// server acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	errs  []error
}

func (w *writer) run(s *server, admin string, n int, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf(`{"name":"load-%d-%d","scope":"read"}`, n, i)
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+s.addr+"/v1/keys", strings.NewReader(body))
			req.Header.Set("X-API-Key", admin)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				w.fail(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var created struct {
				KeyID string `json:"key_id"`
			}
			if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &created) != nil {
				w.fail(fmt.Errorf("create key: %d %s", resp.StatusCode, b))
				return
			}
			w.mu.Lock()
			w.acked = append(w.acked, created.KeyID)
			w.mu.Unlock()
		}
	})
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, err)
}

func (w *writer) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

func TestBackupOnlineWhileWritingThenOffline(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	backups := filepath.Join(t.TempDir(), "backups")
	srv := startServerWith(t, dir, []string{"CUSTOS_BACKUP_DIR=" + backups})
	admin := adminKeyOf(t, srv)
	// A copy of the store holds every tenant: only a superadmin asks.
	env := clientEnv(srv, superadminKeyOf(t, srv))
	refused := requireCode(t, 2, runCLI(t, clientEnv(srv, admin), "backup", "--name", "by-admin"))
	assert.Contains(t, refused.stderr, "requires superadmin")

	var w writer
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for n := range 4 {
		w.run(srv, admin, n, stop, &wg)
	}
	// Let the writers get going, then back up while they write.
	require.Eventually(t, func() bool { return len(w.snapshot()) >= 20 }, 10*time.Second, 5*time.Millisecond)
	before := w.snapshot()
	out := filepath.Join(backups, "online-1")
	r := requireCode(t, 0, runCLI(t, env, "backup", "--name", "online-1"))
	assert.Contains(t, r.stdout, "backup online-1 written to "+out)
	assertPrivate(t, out)
	close(stop)
	wg.Wait()
	require.Empty(t, w.errs)
	original := keyIDs(t, srv, admin)

	// The name exists now: 409, exit 2. A path is no name. Offline mode
	// refuses while the server holds the lock, and says to use online mode.
	exists := requireCode(t, 2, runCLI(t, env, "backup", "--name", "online-1"))
	assert.Contains(t, exists.stderr, "409 Conflict: Backup online-1 already exists")
	path := requireCode(t, 2, runCLI(t, env, "backup", "--name", filepath.Join(t.TempDir(), "elsewhere")))
	assert.Contains(t, path.stderr, "422")
	outOnline := requireCode(t, 2, runCLI(t, env, "backup", "--out", filepath.Join(t.TempDir(), "x")))
	assert.Contains(t, outOnline.stderr, "--out is for offline backups (with --data); online, give --name NAME")
	locked := requireCode(t, 2, runCLI(t, nil, "backup", "--data", dir, "--out", filepath.Join(t.TempDir(), "offline")))
	assert.Contains(t, locked.stderr, "in use by another process")
	assert.Contains(t, locked.stderr, "custos backup --server")

	// The copy verifies, and a server started on it serves keys that all
	// exist in the original, including every key acknowledged before the
	// backup began.
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", out))
	restored := startServerWith(t, out, nil, "--signing-key", signingKeyOf(dir))
	backedUp := keyIDs(t, restored, admin)
	restored.stop(t)
	assert.Greater(t, len(backedUp), len(before))
	for id := range backedUp {
		assert.True(t, original[id], "key %s of the backup exists in the original", id)
	}
	for _, id := range before {
		assert.True(t, backedUp[id], "key %s, acknowledged before the backup, is in it", id)
	}

	// Offline, with the server stopped. Everything serve created in the
	// data folder is its user's only.
	srv.stop(t)
	assertPrivate(t, dir)
	offline := filepath.Join(t.TempDir(), "backup-offline")
	r = requireCode(t, 0, runCLI(t, nil, "backup", "--data", dir, "--out", offline))
	assert.Contains(t, r.stdout, "written to "+offline)
	assertPrivate(t, offline)
	requireCode(t, 0, runCLI(t, nil, "verify", "--data", offline))
	requireCode(t, 2, runCLI(t, nil, "backup", "--data", dir, "--out", offline))
}

func TestServeRefusesABackupFolderInsideTheData(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	data := filepath.Join(base, "data")
	require.NoError(t, os.Mkdir(data, 0o700))
	require.NoError(t, os.Symlink(data, filepath.Join(base, "alias")))
	for _, tc := range []struct{ name, backupDir string }{
		{"the data folder itself", data},
		{"inside it", filepath.Join(data, "backups")},
		{"inside it through a symlink", filepath.Join(base, "alias", "backups")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, "serve", "--data", data, "--addr", freeAddr(t), "--backup-dir", tc.backupDir)
			assert.Equal(t, 2, r.code)
			assert.Contains(t, r.stderr, "custos: --backup-dir "+tc.backupDir+" is inside the data folder "+data+": give a folder outside it")
			entries, err := os.ReadDir(data)
			require.NoError(t, err)
			assert.Empty(t, entries, "refused before anything is created")
		})
	}
}
