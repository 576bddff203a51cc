package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/projections/alerting/webhook"
)

// received is what a test receiver saw.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP receiver that records each request and answers
// with status(n) for the n-th (1-based).
func receiver(t *testing.T, status func(n int) int) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), b})
		n := len(got)
		mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestDeliveryIsSignedOverTimestampAndBody(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, func(int) int { return http.StatusNoContent })
	secret := "whsec_test"
	s := newSender(t, webhook.Config{Targets: []webhook.Target{{URL: srv.URL, Secret: secret}}})
	body := []byte(`{"alert_id":"alr_1","kind":"verify_failed"}`)
	s.Send("alr_1", body)
	require.Eventually(t, func() bool { return len(got()) == 1 }, 10*time.Second, 10*time.Millisecond)
	r := got()[0]
	assert.Equal(t, body, r.body)
	assert.Equal(t, "alr_1", r.header.Get(webhook.IDHeader))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	sig := r.header.Get(webhook.SignatureHeader)
	// Recompute the signature as a receiver in any language would.
	parts := strings.Split(sig, ",")
	require.Len(t, parts, 2)
	ts, ok := strings.CutPrefix(parts[0], "t=")
	require.True(t, ok)
	v1, ok := strings.CutPrefix(parts[1], "v1=")
	require.True(t, ok)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	assert.Equal(t, hex.EncodeToString(m.Sum(nil)), v1)
	require.NoError(t, webhook.Verify([]byte(secret), sig, r.body, time.Now(), 5*time.Minute))
	require.ErrorIs(t, webhook.Verify([]byte("other"), sig, r.body, time.Now(), 5*time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify([]byte(secret), sig, []byte(`{}`), time.Now(), 5*time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify([]byte(secret), sig, r.body, time.Now().Add(time.Hour), 5*time.Minute), webhook.ErrBadSignature)
	assert.Empty(t, s.DeadLetters())
}

func TestFailingReceiverGetsRetriesThenADeadLetter(t *testing.T) {
	t.Parallel()
	// Fails twice, then accepts: delivered on the third attempt.
	flaky, flakyGot := receiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	down, downGot := receiver(t, func(int) int { return http.StatusInternalServerError })
	s := newSender(t, webhook.Config{
		Targets:     []webhook.Target{{URL: flaky.URL}, {URL: down.URL + "/hook?token=secret"}},
		MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
	})
	s.Send("alr_2", []byte(`{"alert_id":"alr_2"}`))
	require.Eventually(t, func() bool { return len(s.DeadLetters()) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Len(t, flakyGot(), 3, "retried until it was accepted, then stopped")
	assert.Len(t, downGot(), 4, "every attempt made")
	for _, r := range downGot() {
		assert.Equal(t, "alr_2", r.header.Get(webhook.IDHeader), "one id across attempts")
	}
	d := s.DeadLetters()[0]
	assert.Equal(t, "alr_2", d.AlertID)
	assert.Equal(t, 4, d.Attempts)
	assert.Contains(t, d.LastError, "500")
	assert.Equal(t, down.URL+"/hook", d.URL, "the query (a token) is not kept")
	assert.JSONEq(t, `{"alert_id":"alr_2"}`, string(d.Body))
}

func TestUnreachableReceiverDeadLetters(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	s := newSender(t, webhook.Config{Targets: []webhook.Target{{URL: url}}, MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	s.Send("alr_3", []byte(`{}`))
	require.Eventually(t, func() bool { return len(s.DeadLetters()) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, s.DeadLetters()[0].Attempts)
}

// TestSlowReceiverNeverBlocksSend checks that Send returns at once while a
// receiver holds every request, and that a full queue dead-letters instead
// of waiting.
func TestSlowReceiverNeverBlocksSend(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	s := newSender(t, webhook.Config{Targets: []webhook.Target{{URL: slow.URL}}, QueueSize: 4, Timeout: time.Minute})
	start := time.Now()
	for i := range 50 {
		s.Send("alr_"+string(rune('a'+i%26)), []byte(`{}`))
	}
	assert.Less(t, time.Since(start), 2*time.Second, "50 sends to a receiver that never answers")
	// One in flight, four queued, the rest dead-lettered at once.
	require.Eventually(t, func() bool { return hits.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	dead := s.DeadLetters()
	assert.GreaterOrEqual(t, len(dead), 45)
	assert.Contains(t, dead[0].LastError, "queue full")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := webhook.Config{Targets: []webhook.Target{{URL: "ftp://x"}, {URL: "/relative"}}, MaxAttempts: -1}.Validate()
	require.Error(t, err)
	for _, want := range []string{"Targets[0]", "Targets[1]", "MaxAttempts"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestDeadLettersSurviveARestart: with DeadLetterFile, a second Sender on
// the same file lists the first one's dead letters, bounded to
// MaxDeadLetters, and adds to them; a file that does not parse is refused.
func TestDeadLettersSurviveARestart(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	file := filepath.Join(t.TempDir(), "dead-letters.json")
	cfg := webhook.Config{Targets: []webhook.Target{{URL: url}}, MaxAttempts: 1, MaxDeadLetters: 2, DeadLetterFile: file}

	first, err := webhook.New(cfg)
	require.NoError(t, err)
	for _, id := range []string{"alr_a", "alr_b", "alr_c"} {
		first.Send(id, []byte(`{"alert_id":"`+id+`"}`))
	}
	require.Eventually(t, func() bool { return len(first.DeadLetters()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		s, err := webhook.New(cfg)
		require.NoError(t, err)
		defer s.Close()
		d := s.DeadLetters()
		return len(d) == 2 && d[1].AlertID == "alr_c"
	}, 10*time.Second, 10*time.Millisecond, "the file follows the list")
	want := first.DeadLetters()
	require.NoError(t, first.Close())

	second := newSender(t, cfg)
	assert.Equal(t, want, second.DeadLetters(), "the same list after a restart")
	assert.Equal(t, []string{"alr_b", "alr_c"}, []string{want[0].AlertID, want[1].AlertID}, "the newest MaxDeadLetters")
	second.Send("alr_d", []byte(`{"alert_id":"alr_d"}`))
	require.Eventually(t, func() bool {
		d := second.DeadLetters()
		return len(d) == 2 && d[1].AlertID == "alr_d"
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, second.Close()) // its last save is done

	require.NoError(t, os.WriteFile(file, []byte("{not json"), 0o600))
	_, err = webhook.New(cfg)
	require.ErrorContains(t, err, "do not parse")
}
