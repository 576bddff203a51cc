package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

// newBackupBody is a POST /v1/admin/backup body naming a new folder under
// the system temp folder; checkBackup removes it after a successful call.
func newBackupBody() string {
	out := filepath.Join(os.TempDir(), fmt.Sprintf("custos-matrix-backup-%d-%d", os.Getpid(), unique.Add(1)))
	return fmt.Sprintf(`{"out":%q}`, out)
}

func checkBackup(t *testing.T, _ string, r response) {
	out, _ := r.object(t)["out"].(string)
	require.True(t, filepath.IsAbs(out), "body %s", r.body)
	t.Cleanup(func() { _ = os.RemoveAll(out) })
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
	out := filepath.Join(t.TempDir(), "nested", "backup")
	r := s.postJSON(t, "/v1/admin/backup", s.admin, fmt.Sprintf(`{"out":%q}`, out))
	close(stop)
	wg.Wait()
	require.Equal(t, http.StatusCreated, r.status, "body %s", r.body)
	assert.Equal(t, out, r.object(t)["out"])

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

func TestBackupRejectsBadFolders(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	existing := t.TempDir()
	for _, tc := range []struct {
		name, body string
		status     int
		detail     string
	}{
		{"relative", `{"out":"backups/today"}`, 422, "Invalid request: out must be an absolute path on the server's machine."},
		{"missing", `{}`, 422, "Invalid request: out must be an absolute path on the server's machine."},
		{"exists", fmt.Sprintf(`{"out":%q}`, existing), 409, fmt.Sprintf("Backup folder %s already exists; name a new one.", existing)},
		{"unknown field", `{"dir":"/x"}`, 400, `Unknown field "dir".`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.postJSON(t, "/v1/admin/backup", s.admin, tc.body)
			require.Equal(t, tc.status, r.status, "body %s", r.body)
			assert.Equal(t, tc.detail, r.detail(t))
		})
	}
	entries, err := os.ReadDir(existing)
	require.NoError(t, err)
	assert.Empty(t, entries, "an existing folder is left alone")
}

func TestBackupWithoutConfigAnswers404(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	api, err := httpapi.New(httpapi.Config{
		Ledger: s.ledger,
		Index:  s.index,
		Verify: func(context.Context) (verify.Report, error) { return verify.Report{}, nil },
		Logger: s.logger,
	})
	require.NoError(t, err)
	srv := newHTTPServer(t, api.Handler())
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/admin/backup", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", s.admin)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "Backups are not enabled on this server.", body["detail"])
}
