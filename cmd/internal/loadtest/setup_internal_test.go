package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdminCallReadsLargeLists: the setup lists every policy before it
// ensures its own, and a store with 10k bulk policies answers with more
// than 4 MiB, which an earlier limit cut short ("unexpected end of JSON
// input" on the second run against the same folder).
func TestAdminCallReadsLargeLists(t *testing.T) {
	policies := make([]map[string]any, 12000)
	for i := range policies {
		policies[i] = map[string]any{"policy_id": strings.Repeat("p", 26), "name": strings.Repeat("n", 300)}
	}
	body, err := json.Marshal(policies)
	require.NoError(t, err)
	require.Greater(t, len(body), 4<<20)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	adm := &admin{client: srv.Client(), base: srv.URL, key: "k"}
	var got []map[string]any
	require.NoError(t, adm.call(context.Background(), http.MethodGet, "/v1/policies", nil, &got))
	require.Len(t, got, len(policies))
}
