package main_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a collector stand-in: it accepts OTLP/HTTP protobuf
// exports and keeps the span names.
type otlpReceiver struct {
	mu    sync.Mutex
	names map[string]int
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg coltrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &msg)
	}
	if err != nil || req.URL.Path != "/v1/traces" {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.names[s.Name]++
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// TestServeExportsTracesAndFlushesThemOnSIGTERM: with an OTLP endpoint in
// the environment, serve exports request and commit spans; with a batch
// delay far beyond the test, they arrive only because SIGTERM flushes them.
func TestServeExportsTracesAndFlushesThemOnSIGTERM(t *testing.T) {
	t.Parallel()
	rcv := &otlpReceiver{names: map[string]int{}}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServerWith(t, dir, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY=600000",
	})
	admin := regexp.MustCompile(`cst_[0-9A-Za-z]{49}`).FindString(srv.stdout.String())
	code, body := srv.do(t, http.MethodPost, "/v1/keys", admin, `{"name": "agent", "scope": "evaluate"}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	rcv.mu.Lock()
	assert.Empty(t, rcv.names, "nothing exported before the batch delay or a flush")
	rcv.mu.Unlock()
	srv.stop(t)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	assert.Equal(t, 1, rcv.names["POST /v1/keys"], "%v", rcv.names)
	assert.Positive(t, rcv.names["eventstore commit"], "%v", rcv.names)
	assert.Equal(t, rcv.names["eventstore commit"], rcv.names["fsync"], "%v", rcv.names)
	assert.Contains(t, srv.logs.String(), `"tracing on"`)
}
