package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi"
	"github.com/custos-dev/custos/projections/writeside"
	"github.com/custos-dev/custos/verify"
)

// newBackupBody is a POST /v1/admin/backup body naming a new backup.
func newBackupBody() string {
	return fmt.Sprintf(`{"name":"matrix-%d"}`, unique.Add(1))
}

func checkBackup(t *testing.T, _ string, r response) {
	obj := r.object(t)
	out, _ := obj["out"].(string)
	require.True(t, filepath.IsAbs(out), "body %s", r.body)
	assert.Equal(t, obj["name"], filepath.Base(out))
	ok, err := eventstore.Exists(nil, out)
	require.NoError(t, err)
	assert.True(t, ok, "the backup folder holds a store")
}

func TestBackupWritesAVerifiableCopyWhileWritesGoOn(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _, _, err := s.ledger.CreateKey(context.Background(), writeside.ActorInit,
					keys.CreateCommand{Name: fmt.Sprintf("writer-%d-%d", w, i), Scope: "read"})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	out := filepath.Join(s.backupDir, "nightly-2031-03-04")
	r := s.postJSON(t, "/v1/admin/backup", s.superadmin, `{"name":"nightly-2031-03-04"}`)
	close(stop)
	wg.Wait()
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	assert.Equal(t, out, r.object(t)["out"])
	assert.Equal(t, "nightly-2031-03-04", r.object(t)["name"])

	// The copy opens like any store, verifies, and every key it holds
	// exists in the original.
	copied, err := eventstore.Open(eventstore.Options{Dir: out, Logger: s.logger})
	require.NoError(t, err)
	defer copied.Close()
	report, err := verify.Store(context.Background(), copied, eventstore.DefaultChain)
	require.NoError(t, err)
	assert.True(t, report.Valid, "%+v", report)
	ledger, err := writeside.Open(context.Background(), writeside.Config{Store: copied, Logger: s.logger})
	require.NoError(t, err)
	backedUp := ledger.Keys()
	assert.NotEmpty(t, backedUp)
	for _, k := range backedUp {
		_, err := s.ledger.Key(k.KeyID)
		assert.NoError(t, err, "key %s of the backup is in the original", k.KeyID)
	}
}

// TestBackupTakesOnlyANameUnderTheRoot sends every kind of name a hostile
// admin might, and requires each to be refused with its 4xx and detail, and
// nothing created outside the backup folder.
func TestBackupTakesOnlyANameUnderTheRoot(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	outside := t.TempDir()
	// Symlinks planted in the backup folder, pointing out of it: a
	// folder, a name that does not exist yet there, and a file.
	require.NoError(t, os.Symlink(outside, filepath.Join(s.backupDir, "to-outside")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "fresh"), filepath.Join(s.backupDir, "dangling")))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "file"), nil, 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "file"), filepath.Join(s.backupDir, "to-file")))
	require.NoError(t, os.Mkdir(filepath.Join(s.backupDir, "taken"), 0o700))

	const badName = "Invalid request: name must be a folder name matching ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ without \"..\" (not a path); the backup is written under the server's backup folder."
	for _, tc := range []struct {
		name, body string
		status     int
		detail     string
	}{
		{"missing", `{}`, 422, badName},
		{"empty", `{"name":""}`, 422, badName},
		{"absolute path", fmt.Sprintf(`{"name":%q}`, outside), 422, badName},
		{"relative path", `{"name":"a/b"}`, 422, badName},
		{"parent", `{"name":".."}`, 422, badName},
		{"parent path", `{"name":"../escape"}`, 422, badName},
		{"dot dot inside", `{"name":"a..b"}`, 422, badName},
		{"dot", `{"name":"."}`, 422, badName},
		{"hidden", `{"name":".hidden"}`, 422, badName},
		{"backslash", `{"name":"a\\b"}`, 422, badName},
		{"newline", `{"name":"a\nb"}`, 422, badName},
		{"NUL", `{"name":"a\u0000b"}`, 422, badName},
		{"space", `{"name":"a b"}`, 422, badName},
		{"non-ASCII", `{"name":"sauvegarde-été"}`, 422, badName},
		{"too long", fmt.Sprintf(`{"name":%q}`, strings.Repeat("a", 65)), 422, badName},
		{"dash first", `{"name":"-rf"}`, 422, badName},
		{"old out field", fmt.Sprintf(`{"out":%q}`, filepath.Join(outside, "x")), 422,
			"Invalid request: out is no longer accepted; give name, a folder name under the server's backup folder (--backup-dir)."},
		{"name and out", fmt.Sprintf(`{"name":"ok","out":%q}`, filepath.Join(outside, "x")), 422,
			"Invalid request: out is no longer accepted; give name, a folder name under the server's backup folder (--backup-dir)."},
		{"existing folder", `{"name":"taken"}`, 409, "Backup taken already exists; choose a new name."},
		{"symlink to a folder outside", `{"name":"to-outside"}`, 409, "Backup to-outside already exists; choose a new name."},
		{"dangling symlink", `{"name":"dangling"}`, 409, "Backup dangling already exists; choose a new name."},
		{"symlink to a file outside", `{"name":"to-file"}`, 409, "Backup to-file already exists; choose a new name."},
		{"unknown field", `{"dir":"/x"}`, 400, `Unknown field "dir".`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.postJSON(t, "/v1/admin/backup", s.superadmin, tc.body)
			require.Equal(t, tc.status, r.status, "body %s", r.body)
			assert.Equal(t, tc.detail, r.detail(t))
		})
	}
	// Nothing appeared outside, nothing new inside.
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "file", entries[0].Name())
	inside, err := os.ReadDir(s.backupDir)
	require.NoError(t, err)
	var names []string
	for _, e := range inside {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"dangling", "taken", "to-file", "to-outside"}, names)
	taken, err := os.ReadDir(filepath.Join(s.backupDir, "taken"))
	require.NoError(t, err)
	assert.Empty(t, taken, "an existing folder is left alone")

	// A valid name works, once.
	r := s.postJSON(t, "/v1/admin/backup", s.superadmin, `{"name":"v1.2_ok-3"}`)
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	r = s.postJSON(t, "/v1/admin/backup", s.superadmin, `{"name":"v1.2_ok-3"}`)
	require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
}

// TestBackupFailureLeavesNoName checks that a backup that fails leaves
// neither the name nor a partial copy behind.
func TestBackupFailureLeavesNoName(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	root := t.TempDir()
	api, err := httpapi.New(httpapi.Config{
		Tenants:   s.reg,
		Verify:    func(context.Context, string) (verify.Report, error) { return verify.Report{}, nil },
		Logger:    s.logger,
		BackupDir: root,
		Backup: func(_ context.Context, dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return errors.New("disk full")
		},
	})
	require.NoError(t, err)
	srv := newHTTPServer(t, api.Handler())
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/admin/backup", strings.NewReader(`{"name":"b1"}`))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", s.superadmin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	got := readResponse(t, resp)
	assert.Equal(t, http.StatusInternalServerError, got.status)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestBackupWithoutABackupFolderAnswers403(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for _, cfg := range []struct {
		name   string
		dir    string
		backup func(context.Context, string) error
	}{
		{"no backup folder", "", func(context.Context, string) error { return nil }},
		{"no backup function", t.TempDir(), nil},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			api, err := httpapi.New(httpapi.Config{
				Tenants:   s.reg,
				Verify:    func(context.Context, string) (verify.Report, error) { return verify.Report{}, nil },
				Logger:    s.logger,
				BackupDir: cfg.dir,
				Backup:    cfg.backup,
			})
			require.NoError(t, err)
			srv := newHTTPServer(t, api.Handler())
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/admin/backup", strings.NewReader(`{"name":"b"}`))
			require.NoError(t, err)
			req.Header.Set("X-API-Key", s.superadmin)
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			var body map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, "Online backups are disabled on this server: start it with --backup-dir DIR (a folder outside the data folder) to write them to DIR/NAME, or back up offline with custos backup --data.", body["detail"])
		})
	}
}

func TestConfigRefusesARelativeBackupFolder(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	_, err := httpapi.New(httpapi.Config{
		Tenants: s.reg, BackupDir: "backups",
		Verify: func(context.Context, string) (verify.Report, error) { return verify.Report{}, nil },
	})
	require.ErrorContains(t, err, `httpapi: Config.BackupDir must be absolute, got "backups"`)
}
