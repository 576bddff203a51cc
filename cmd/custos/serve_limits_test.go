package main_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeLimitFlagsReachTheServer starts serve with a header limit from a
// flag and a connection cap from the environment, and checks both answers.
func TestServeLimitFlagsReachTheServer(t *testing.T) {
	t.Parallel()
	srv := startServerWith(t, filepath.Join(t.TempDir(), "data"), []string{"CUSTOS_MAX_CONNECTIONS=1"}, "--max-header-bytes", "1024")
	assert.Contains(t, srv.logs.String(), `"max_connections":1`)

	held, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, held.SetDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(held)
	ask := func(req string) (int, string) {
		_, err := io.WriteString(held, req)
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := ask("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, http.StatusOK, code)

	// The one slot is taken: a second connection is turned away.
	other, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.SetDeadline(time.Now().Add(10*time.Second)))
	_, _ = io.WriteString(other, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(other), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.JSONEq(t, `{"detail":"Too many connections; retry shortly."}`, string(b))

	code, body := ask("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n")
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
	assert.JSONEq(t, `{"detail":"Request headers too large: at most 1024 bytes."}`, body)
	srv.stop(t)
}

func TestServeRefusesAConnectionCapBeyondTheFileLimit(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "serve", "--data", filepath.Join(t.TempDir(), "data"), "--addr", freeAddr(t), "--max-connections", "2000000000")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--max-connections 2000000000 leaves too few open files for the store")
}
