package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/verify"
)

// TestClosedStoreAnswers503 closes the store under a running Ledger and
// server: every write answers 503 and changes nothing, reads keep working.
func TestClosedStoreAnswers503(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	target, targetKey := s.createKey(t, "target", "read", 0)
	require.True(t, works(t, s, targetKey))
	require.True(t, works(t, s, s.admin)) // records the admin key's use
	listBefore := s.get(t, "/v1/keys", s.admin)
	require.Equal(t, http.StatusOK, listBefore.status)

	require.NoError(t, s.store.Close())
	// Close committed everything queued (key.used included): this is the
	// last head. A closed store answers no reads; look at the folder.
	ro, err := eventstore.Open(eventstore.Options{Dir: s.dir, ReadOnly: true})
	require.NoError(t, err)
	last, err := ro.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	require.NoError(t, ro.Close())
	headBefore := last.Seq

	writes := []request{
		{method: http.MethodPost, path: "/v1/keys", body: `{"name":"new","scope":"evaluate"}`},
		{method: http.MethodPost, path: "/v1/keys/" + target + "/rotate", body: `{"grace_seconds":60}`},
		{method: http.MethodDelete, path: "/v1/keys/" + target},
	}
	for _, w := range writes {
		w.key = s.admin
		r := s.do(t, w)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", w.method, w.path, r.body)
		assert.Equal(t, "audit log unavailable", r.detail(t))
	}

	// Nothing was created, rotated or revoked: the target still works.
	listAfter := s.get(t, "/v1/keys", s.admin)
	require.Equal(t, http.StatusOK, listAfter.status)
	assert.JSONEq(t, string(listBefore.body), string(listAfter.body))
	assert.True(t, works(t, s, targetKey))

	var rep verify.Report
	// The log agrees after a restart.
	s.restart()
	assert.Equal(t, headBefore, s.head(t))
	listReopened := s.get(t, "/v1/keys", s.admin)
	assert.JSONEq(t, string(listBefore.body), string(listReopened.body))
	rep, err = verify.Store(context.Background(), s.store, eventstore.DefaultChain)
	require.NoError(t, err)
	assert.True(t, rep.Valid)
}
