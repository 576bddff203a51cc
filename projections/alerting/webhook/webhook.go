// Package webhook delivers alerts to HTTP receivers: a POST of the alert's
// JSON body, signed with HMAC-SHA256 over a timestamp and the body in the
// Custos-Signature header (see Sign; docs/alerts.md shows a receiver's
// check), retried with exponential backoff and jitter, and kept in a
// bounded dead-letter list when every attempt failed.
//
// Each target has its own bounded queue and goroutine, so a slow or dead
// receiver holds back only its own deliveries; Send never blocks (a full
// queue dead-letters the alert at once). A Sender is safe for concurrent
// use. Close stops it; alerts still queued are not delivered (they stay on
// the chain, GET /v1/alerts lists them).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "Custos-Signature"
	// IDHeader carries the alert id, the same for every attempt, so a
	// receiver can drop repeats.
	IDHeader = "Custos-Alert-Id"
)

// Defaults of Config.
const (
	DefaultQueueSize      = 1024
	DefaultMaxAttempts    = 6
	DefaultBaseDelay      = time.Second
	DefaultMaxDelay       = 5 * time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultMaxDeadLetters = 1000
)

// Target is one receiver.
type Target struct {
	// URL is the absolute http or https URL alerts are POSTed to.
	URL string
	// Secret keys the signature. Empty sends no Custos-Signature header.
	Secret string
}

// Config configures a Sender.
type Config struct {
	// Targets are the receivers; every alert goes to each.
	Targets []Target
	// QueueSize bounds the alerts waiting per target. Default
	// DefaultQueueSize.
	QueueSize int
	// MaxAttempts is how many times one alert is tried per target before it
	// is dead-lettered. Default DefaultMaxAttempts.
	MaxAttempts int
	// BaseDelay is the wait after the first failed attempt; each later
	// wait doubles, up to MaxDelay, and is drawn uniformly from its upper
	// half (jitter). Defaults DefaultBaseDelay and DefaultMaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one attempt. Default DefaultTimeout.
	Timeout time.Duration
	// MaxDeadLetters bounds the dead-letter list; the oldest go first.
	// Default DefaultMaxDeadLetters.
	MaxDeadLetters int
	// DeadLetterFile, if set, keeps the dead-letter list across restarts:
	// New loads it (a missing file is an empty list; one that does not
	// parse is an error), and every new dead letter rewrites it whole
	// (a temporary file beside it, fsync, rename), so a crash leaves the
	// old list or the new one. A failed write is logged; the list in
	// memory stays complete.
	DeadLetterFile string
	// Client sends the requests. Default: an http.Client with Timeout that
	// follows no redirects (a 3xx is a failed attempt).
	Client *http.Client
	// Clock stamps signatures and dead letters. Default time.Now.
	Clock func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	for i, t := range c.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook: Targets[%d].URL %q must be an absolute http or https URL", i, t.URL))
		}
	}
	for name, v := range map[string]int{"QueueSize": c.QueueSize, "MaxAttempts": c.MaxAttempts, "MaxDeadLetters": c.MaxDeadLetters} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("webhook: Config.%s must not be negative", name))
		}
	}
	if c.BaseDelay < 0 || c.MaxDelay < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("webhook: Config.BaseDelay, MaxDelay and Timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxDeadLetters == 0 {
		c.MaxDeadLetters = DefaultMaxDeadLetters
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout:       c.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// DeadLetter is an alert that could not be delivered to one target.
type DeadLetter struct {
	AlertID   string          `json:"alert_id"`
	URL       string          `json:"url"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	FailedAt  time.Time       `json:"failed_at"`
	Body      json.RawMessage `json:"body"`
}

type item struct {
	id   string
	body []byte
}

// Sender delivers alerts to its targets.
type Sender struct {
	cfg    Config
	queues []chan item
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
	once   sync.Once

	mu   sync.Mutex
	dead []DeadLetter
	// saveMu orders the rewrites of DeadLetterFile; saved is the number
	// of dead letters the file holds the newest of (guarded by saveMu).
	saveMu sync.Mutex
	added  uint64 // dead letters ever added (guarded by mu)
	saved  uint64
}

// New starts a Sender: one goroutine per target. Close it when done.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dead, err := loadDeadLetters(cfg.DeadLetterFile)
	if err != nil {
		return nil, err
	}
	if len(dead) > cfg.MaxDeadLetters {
		dead = dead[len(dead)-cfg.MaxDeadLetters:]
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{cfg: cfg, ctx: ctx, cancel: cancel, dead: dead}
	for _, t := range cfg.Targets {
		q := make(chan item, cfg.QueueSize)
		s.queues = append(s.queues, q)
		s.wg.Go(func() { s.run(t, q) })
	}
	return s, nil
}

// Send queues an alert (id and its JSON body) for every target. It never
// blocks: when a target's queue is full the alert is dead-lettered for it
// at once.
func (s *Sender) Send(id string, body []byte) {
	for i, q := range s.queues {
		select {
		case q <- item{id: id, body: body}:
		default:
			s.deadLetter(s.cfg.Targets[i].URL, item{id, body}, 0, "queue full: the receiver is too slow or down")
		}
	}
}

// DeadLetters returns the dead letters, oldest first.
func (s *Sender) DeadLetters() []DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DeadLetter(nil), s.dead...)
}

// Close stops delivery and waits for the goroutines (an attempt in flight
// is cancelled). Safe to call twice.
func (s *Sender) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

func (s *Sender) run(t Target, q <-chan item) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case it := <-q:
			s.deliver(t, it)
		}
	}
}

// deliver tries it up to MaxAttempts times, then dead-letters it.
func (s *Sender) deliver(t Target, it item) {
	var last error
	for attempt := 1; attempt <= s.cfg.MaxAttempts; attempt++ {
		if last = s.attempt(t, it); last == nil {
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("webhook delivery failed", "url", redact(t.URL), "alert_id", it.id, "attempt", attempt, "err", last)
		if attempt == s.cfg.MaxAttempts {
			break
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.backoff(attempt)):
		}
	}
	s.deadLetter(t.URL, it, s.cfg.MaxAttempts, last.Error())
}

// backoff is the wait after failed attempt n (1-based): BaseDelay·2^(n-1),
// capped at MaxDelay, drawn uniformly from [d/2, d].
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.BaseDelay
	for i := 1; i < n && d < s.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

func (s *Sender) attempt(t Target, it item) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(it.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "custos-alerts")
	req.Header.Set(IDHeader, it.id)
	if t.Secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(t.Secret), s.cfg.Clock(), it.body))
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

func (s *Sender) deadLetter(u string, it item, attempts int, reason string) {
	s.cfg.Logger.Error("webhook alert dead-lettered", "url", redact(u), "alert_id", it.id, "attempts", attempts, "err", reason)
	body := json.RawMessage(it.body)
	if !json.Valid(body) {
		body, _ = json.Marshal(string(it.body))
	}
	s.mu.Lock()
	if len(s.dead) >= s.cfg.MaxDeadLetters {
		s.dead = append(s.dead[:0], s.dead[1:]...)
	}
	s.dead = append(s.dead, DeadLetter{AlertID: it.id, URL: redact(u), Attempts: attempts, LastError: reason, FailedAt: s.cfg.Clock().UTC(), Body: body})
	s.added++
	s.mu.Unlock()
	s.save()
}

// save rewrites DeadLetterFile with the list as it is now, unless a later
// call already wrote a list at least as new.
func (s *Sender) save() {
	if s.cfg.DeadLetterFile == "" {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	n, list := s.added, append([]DeadLetter(nil), s.dead...)
	s.mu.Unlock()
	if n <= s.saved {
		return
	}
	if err := writeDeadLetters(s.cfg.DeadLetterFile, list); err != nil {
		s.cfg.Logger.Error("webhook: dead letters not saved; they are kept in memory until a restart", "path", s.cfg.DeadLetterFile, "err", err)
		return
	}
	s.saved = n
}

// loadDeadLetters reads the list written by writeDeadLetters at path; a
// missing file (or no path) is an empty list.
func loadDeadLetters(path string) ([]DeadLetter, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: read dead letters: %w", err)
	}
	var doc deadLetterFile
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("webhook: dead letters in %s do not parse (move the file away to start with an empty list): %w", path, err)
	}
	return doc.DeadLetters, nil
}

// deadLetterFile is the JSON document of Config.DeadLetterFile.
type deadLetterFile struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// writeDeadLetters replaces path with list: a temporary file beside it,
// fsynced, renamed over it, and the folder fsynced.
func writeDeadLetters(path string, list []DeadLetter) error {
	b, err := json.Marshal(deadLetterFile{DeadLetters: list})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// redact drops the user info and query of u, which may hold a token.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// Sign returns the Custos-Signature value for body sent at t:
// "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// ErrBadSignature is returned by Verify.
var ErrBadSignature = errors.New("webhook: signature does not verify")

// Verify checks a Custos-Signature header value against body: one of its
// v1 values must be the HMAC of "<t>.<body>" under secret, and t within
// tolerance of now (0: no time check). It is what a Go receiver runs.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: timestamp outside the tolerance", ErrBadSignature)
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}
