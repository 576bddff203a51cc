package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/writeside"
)

// Cluster is what the API needs of a node of a cluster (serve --nats):
// where each chain is sequenced, and what GET /v1/cluster shows. httpapi
// never sees how the cluster is built. Its methods are called
// concurrently.
type Cluster interface {
	// Sequencer returns the base URL (http://host:port) of the node that
	// sequences chain; local is true when that is this node with its
	// appends open, ok is false while no node is known to sequence it (a
	// failover is under way).
	Sequencer(chain string) (baseURL string, local, ok bool)
	// Role is this node's role: wire.RoleSequencer while it sequences a
	// chain, else wire.RoleFollower.
	Role() string
	// Status describes the cluster for GET /v1/cluster.
	Status(ctx context.Context) (wire.Cluster, error)
}

// headerForwarded marks a request one node forwarded to the sequencer; its
// value names the forwarding node's role. A node that does not sequence
// the chain answers a forwarded request 503 rather than forwarding again.
const headerForwarded = "Custos-Forwarded"

// minSeqParam is the query parameter of a read that waits for this node
// to show the chain through a seq (its own earlier write).
const minSeqParam = "min_seq"

// Details of the cluster's retryable answers (503).
const (
	detailNoSequencer    = "No node sequences this chain right now (a failover is under way); nothing was recorded, retry."
	detailForwardedTwice = "This node does not sequence the chain either (the sequencer changed while the request was forwarded); nothing was recorded, retry."
	detailUnreachable    = "The node that sequences this chain did not answer; the change may or may not be recorded, retry with the same request."
	detailFenced         = "This node stopped sequencing the chain before the change was recorded; nothing was recorded, retry."
	detailMinSeq         = "This node has not applied the chain through min_seq yet; retry, or ask another node."
	detailNotClustered   = "This server is a single node (serve without --nats): there is no cluster to show."
	// detailStatusUnavailable answers GET /v1/cluster while JetStream does not answer.
	detailStatusUnavailable = "The cluster's stream did not answer (a NATS server is down or a leader is being elected); retry."
)

// routeLocally lists the writes every node serves itself, not the
// sequencer: they change nothing in the log.
var routeLocally = map[string]bool{
	"POST /v1/admin/backup": true,
}

// isWrite reports whether a request changes the log, so that a node that
// does not sequence its chain forwards it.
func isWrite(method, route string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return !routeLocally[method+" "+route]
}

// sequencedBy is the chain whose sequencer takes every write: on a
// cluster the node that sequences the system chain sequences every chain
// (docs/cluster.md), so a write is forwarded there before authentication,
// whichever tenant's key it carries, and that node authenticates it.
const sequencedBy = tenants.SystemChain

// clusterRoute runs before authorize on a node of a cluster: a write
// whose chain another node sequences is forwarded there (that node
// authenticates it). A read with min_seq waits after authentication, on
// the caller's tenant's chain (checkMinSeq).
func (s *Server) clusterRoute(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		_, routed := s.scopes[req.Method+" "+c.Path()]
		if cl := s.cfg.Cluster; cl != nil && routed && isWrite(req.Method, c.Path()) {
			base, local, ok := cl.Sequencer(sequencedBy)
			switch {
			case local:
				return next(c)
			case !ok:
				return unavailable(c, detailNoSequencer)
			case req.Header.Get(headerForwarded) != "":
				return unavailable(c, detailForwardedTwice)
			}
			return s.forward(c, base)
		}
		return next(c)
	}
}

// checkMinSeq makes a read with min_seq wait until ledger (the caller's
// tenant's) shows its chain through it, or answers 503.
func (s *Server) checkMinSeq(c echo.Context, ledger *writeside.Ledger) error {
	v, ok := c.QueryParams()[minSeqParam]
	if !ok {
		return nil
	}
	if len(v) != 1 {
		return echo.NewHTTPError(http.StatusBadRequest, "Query parameter min_seq is given more than once.")
	}
	seq, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid request: query parameter min_seq must be a seq (a whole number).")
	}
	if err := s.waitApplied(c.Request().Context(), ledger, seq); err != nil {
		if errors.Is(err, errMinSeq) {
			return unavailable(c, detailMinSeq)
		}
		return err
	}
	return nil
}

// unavailable is a retryable 503, with Retry-After.
func unavailable(c echo.Context, detail string) error {
	c.Response().Header().Set("Retry-After", "1")
	return echo.NewHTTPError(http.StatusServiceUnavailable, detail)
}

// errMinSeq means a read's min_seq was not reached in time.
var errMinSeq = errors.New("httpapi: min_seq not reached")

// minSeqPoll is how often a read with min_seq looks again.
const minSeqPoll = 2 * time.Millisecond

// waitApplied waits until the live state holds the chain through seq, at
// most Config.MinSeqWait, else returns errMinSeq. The live state folds in
// only durable records of other nodes, and a seq a caller was answered
// with is durable, so every read of the log (queries read the records
// after the audit index's checkpoint too) then shows it.
func (s *Server) waitApplied(ctx context.Context, ledger *writeside.Ledger, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MinSeqWait)
	defer cancel()
	t := time.NewTicker(minSeqPoll)
	defer t.Stop()
	for {
		if ledger.Applied().Seq >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return errMinSeq
		case <-t.C:
		}
	}
}

// proxies holds one reverse proxy per sequencer URL.
type proxies struct {
	mu sync.Mutex
	m  map[string]*httputil.ReverseProxy
}

// forward serves c through the node at base and logs where it went.
func (s *Server) forward(c echo.Context, base string) error {
	p, err := s.proxy(base)
	if err != nil {
		return err
	}
	req := c.Request()
	req.Header.Set(headerForwarded, wire.RoleFollower)
	// The sequencer logs the request under the same id.
	req.Header.Set(headerRequestID, requestIDOf(c))
	c.Set(ctxForwarded, base)
	p.ServeHTTP(c.Response(), req)
	return nil
}

// ctxForwarded is where a forwarded request's target is kept for the
// access log.
const ctxForwarded = "custos.forwarded"

func (s *Server) proxy(base string) (*httputil.ReverseProxy, error) {
	s.proxies.mu.Lock()
	defer s.proxies.mu.Unlock()
	if p, ok := s.proxies.m[base]; ok {
		return p, nil
	}
	target, err := url.Parse(base)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return nil, fmt.Errorf("httpapi: sequencer URL %q: %w", base, errors.Join(err, errors.New("not an absolute URL")))
	}
	logger := s.cfg.Logger
	p := &httputil.ReverseProxy{
		// Every request in flight here may hold a connection to the
		// sequencer: keep them, and fail fast when it is gone.
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		},
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del(headerRequestID) // this node set it already, to the same id
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "forward to the sequencer failed",
				slog.String("sequencer", base), slog.String("err", err.Error()))
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusServiceUnavailable, detailUnreachable)
		},
	}
	if s.proxies.m == nil {
		s.proxies.m = map[string]*httputil.ReverseProxy{}
	}
	s.proxies.m[base] = p
	return p, nil
}

// clusterStatus handles GET /v1/cluster.
func (s *Server) clusterStatus(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	if s.cfg.Cluster == nil {
		return echo.NewHTTPError(http.StatusNotFound, detailNotClustered)
	}
	st, err := s.cfg.Cluster.Status(c.Request().Context())
	if err != nil {
		// The stream or the lease bucket did not answer: a NATS server
		// is down or a leader is being elected.
		s.cfg.Logger.LogAttrs(c.Request().Context(), slog.LevelWarn, "cluster status", slog.String("err", err.Error()))
		return unavailable(c, detailStatusUnavailable)
	}
	return c.JSON(http.StatusOK, onlyChain(st, tenantOf(c).ID))
}

// onlyChain keeps of st the chain a tenant's key may see, its own: the
// other tenants' chains and the system chain are not a tenant's business,
// not even their names.
func onlyChain(st wire.Cluster, chain string) wire.Cluster {
	out := st
	out.Chains = []wire.ClusterChain{}
	for _, c := range st.Chains {
		if c.Chain == chain {
			out.Chains = append(out.Chains, c)
		}
	}
	out.Nodes = make([]wire.ClusterNode, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		kept := n
		kept.Chains = []wire.NodeChain{}
		for _, c := range n.Chains {
			if c.Chain == chain {
				kept.Chains = append(kept.Chains, c)
			}
		}
		out.Nodes = append(out.Nodes, kept)
	}
	return out
}
