package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Baseline is the in-process comparison server: echo on 127.0.0.1, POST
// /v1/context/evaluate decodes the same JSON body as custos, looks the
// decision up in one map (role and source) and encodes a small answer. No
// authentication, policy or log. Close it when done; Close is safe to call
// twice and concurrently.
type Baseline struct {
	url       string
	srv       *http.Server
	served    chan error
	closeOnce sync.Once
	closeErr  error
}

// baselineAnswer is the baseline's reply.
type baselineAnswer struct {
	Decision  string `json:"decision"`
	Reason    string `json:"reason"`
	SessionID string `json:"session_id"`
}

// StartBaseline starts a Baseline on 127.0.0.1 on a free port.
func StartBaseline() (*Baseline, error) {
	table := make(map[string]string)
	for _, r := range roles {
		for _, s := range r.allowed {
			table[r.agentRole()+"|"+s] = decisionAllow
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST(evaluatePath, func(c echo.Context) error {
		var req evaluateRequest
		if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON")
		}
		d, ok := table[req.AgentRole+"|"+req.SourceID]
		if !ok {
			d = decisionDeny
		}
		return c.JSON(http.StatusOK, baselineAnswer{Decision: d, Reason: "baseline", SessionID: req.SessionID})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: baseline listen: %w", err)
	}
	b := &Baseline{
		url:    "http://" + ln.Addr().String(),
		srv:    &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second},
		served: make(chan error, 1),
	}
	go func() { b.served <- b.srv.Serve(ln) }()
	return b, nil
}

// URL returns the base URL, http://127.0.0.1:PORT.
func (b *Baseline) URL() string { return b.url }

// Close shuts the server down, waiting up to 5 s for in-flight requests.
func (b *Baseline) Close() error {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.closeErr = b.srv.Shutdown(ctx)
		if err := <-b.served; !errors.Is(err, http.ErrServerClosed) && b.closeErr == nil {
			b.closeErr = err
		}
	})
	return b.closeErr
}
