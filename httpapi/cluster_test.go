package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/writeside"
)

// sequencerAt is a cluster as one node sees it: the chain is sequenced at
// url (by this node when local), or by no node when !ok. The real one is
// cmd/custos's, on JetStream; its tests run real nodes.
type sequencerAt struct {
	url       string
	local, ok bool
}

func (c sequencerAt) Sequencer(string) (string, bool, bool) { return c.url, c.local, c.ok }

func (c sequencerAt) Role() string {
	if c.local {
		return wire.RoleSequencer
	}
	return wire.RoleFollower
}

func (c sequencerAt) Status(context.Context) (wire.Cluster, error) {
	seq := "n0"
	return wire.Cluster{Node: "n1", Role: c.Role(), Chains: []wire.ClusterChain{
		{Chain: "acme", Sequencer: &seq, SequencerURL: &c.url, StreamSeq: 3},
		{Chain: "default", Sequencer: &seq, SequencerURL: &c.url, StreamSeq: 7},
		{Chain: "system", Sequencer: &seq, SequencerURL: &c.url, StreamSeq: 2},
	}, Nodes: []wire.ClusterNode{{Node: "n0", URL: c.url, Chains: []wire.NodeChain{
		{Chain: "acme", AppliedSeq: 3}, {Chain: "default", AppliedSeq: 6, Lag: 1}, {Chain: "system", AppliedSeq: 2},
	}}}}, nil
}

// clusterOf is a cluster whose node sequences the chain and reports
// status.
type clusterOf struct{ status wire.Cluster }

func (c clusterOf) Sequencer(string) (string, bool, bool)        { return "", true, true }
func (c clusterOf) Role() string                                 { return c.status.Role }
func (c clusterOf) Status(context.Context) (wire.Cluster, error) { return c.status, nil }

// TestFollowerForwardsWrites: a node that does not sequence the chain
// forwards writes (evaluate and admin writes) to the sequencer, which
// authenticates and records them, and serves reads itself; without a
// sequencer, or when the request was forwarded already, or when the
// sequencer does not answer, it answers 503 with a JSON detail.
func TestFollowerForwardsWrites(t *testing.T) {
	t.Parallel()
	sequencer := newStack(t)
	follower := newStack(t, withCluster(sequencerAt{url: sequencer.srv.URL, ok: true}, 50*time.Millisecond))
	before := follower.head(t)

	r := follower.postJSON(t, "/v1/keys", sequencer.admin, `{"name":"forwarded","scope":"read"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	id, _ := r.object(t)["key_id"].(string)
	require.NotEmpty(t, id)
	got := sequencer.get(t, "/v1/keys/"+id, sequencer.admin)
	require.Equal(t, http.StatusOK, got.status, "the sequencer recorded the key: %s", got.body)
	require.Equal(t, before, follower.head(t), "nothing was recorded on the follower")

	// Reads stay on the follower: its own admin key works there, and the
	// sequencer's key (unknown to the follower's separate store) does not.
	require.Equal(t, http.StatusOK, follower.get(t, "/v1/keys", follower.admin).status)
	require.Equal(t, http.StatusForbidden, follower.get(t, "/v1/keys", sequencer.admin).status)

	again := follower.do(t, request{method: http.MethodPost, path: "/v1/keys", key: sequencer.admin,
		body: `{"name":"twice","scope":"read"}`, header: map[string]string{"Custos-Forwarded": "follower"}})
	require.Equal(t, http.StatusServiceUnavailable, again.status)
	assert.Contains(t, again.detail(t), "retry")

	vacant := newStack(t, withCluster(sequencerAt{}, 50*time.Millisecond))
	r = vacant.postJSON(t, "/v1/keys", vacant.admin, `{"name":"none","scope":"read"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Contains(t, r.detail(t), "failover")
	assert.Equal(t, "1", r.header.Get("Retry-After"))

	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	unreachable := newStack(t, withCluster(sequencerAt{url: gone.URL, ok: true}, 50*time.Millisecond))
	r = unreachable.postJSON(t, "/v1/keys", unreachable.admin, `{"name":"lost","scope":"read"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Contains(t, r.detail(t), "did not answer")
}

// statusFails is a cluster whose stream does not answer.
type statusFails struct{ sequencerAt }

func (statusFails) Status(context.Context) (wire.Cluster, error) {
	return wire.Cluster{}, errors.New("jetstream: last message of default: context deadline exceeded")
}

// TestClusterStatusWhileTheStreamIsDown: GET /v1/cluster during a
// failover is a retryable 503 with a detail, not a 500.
func TestClusterStatusWhileTheStreamIsDown(t *testing.T) {
	t.Parallel()
	node := newStack(t, withCluster(statusFails{sequencerAt{url: "http://127.0.0.1:1", local: true, ok: true}}, 50*time.Millisecond))
	r := node.get(t, "/v1/cluster", node.admin)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Contains(t, r.detail(t), "retry")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
}

// TestClusterRouteAndRole: GET /v1/cluster and the role in /readyz come
// from the Cluster; a single node answers 404 and no role.
func TestClusterRouteAndRole(t *testing.T) {
	t.Parallel()
	single := newStack(t)
	r := single.get(t, "/v1/cluster", single.admin)
	require.Equal(t, http.StatusNotFound, r.status)
	assert.Contains(t, r.detail(t), "single node")
	assert.JSONEq(t, `{"status":"ready"}`, string(single.get(t, "/readyz", "").body))

	node := newStack(t, withCluster(sequencerAt{url: "http://127.0.0.1:1", local: true, ok: true}, 50*time.Millisecond))
	r = node.get(t, "/v1/cluster", node.admin)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	// A tenant's key sees its own chain alone: not the other tenants'
	// chains, nor the system chain.
	assert.JSONEq(t, `{"node":"n1","role":"sequencer","chains":[{"chain":"default","sequencer":"n0","sequencer_url":"http://127.0.0.1:1","stream_seq":7}],
		"nodes":[{"node":"n0","url":"http://127.0.0.1:1","reported_at":"0001-01-01T00:00:00Z","chains":[{"chain":"default","applied_seq":6,"lag":1}]}]}`, string(r.body))
	assert.NotContains(t, string(r.body), "acme")
	assert.NotContains(t, string(r.body), "system")
	assert.JSONEq(t, `{"status":"ready","role":"sequencer"}`, string(node.get(t, "/readyz", "").body))
	// A local sequencer handles writes itself.
	created := node.postJSON(t, "/v1/keys", node.admin, `{"name":"local","scope":"read"}`)
	require.Equal(t, http.StatusCreated, created.status, "%s", created.body)
}

// TestMinSeq: a read with min_seq waits until the node shows the chain
// through it, or answers 503 once the wait is over; never older data. A
// malformed min_seq is a 400.
func TestMinSeq(t *testing.T) {
	t.Parallel()
	for _, clustered := range []bool{false, true} {
		t.Run(fmt.Sprintf("clustered=%v", clustered), func(t *testing.T) {
			t.Parallel()
			var s *stack
			if clustered {
				s = newStack(t, withCluster(sequencerAt{local: true, ok: true}, 200*time.Millisecond))
			} else {
				s = newStack(t, withCluster(nil, 200*time.Millisecond))
			}
			head := s.head(t)
			r := s.get(t, fmt.Sprintf("/v1/audit/events?min_seq=%d", head), s.admin)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)

			began := time.Now()
			// The reads record their key's use (key.used): ask well beyond.
			r = s.get(t, fmt.Sprintf("/v1/audit/events?min_seq=%d", head+100), s.admin)
			require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
			assert.Contains(t, r.detail(t), "min_seq")
			assert.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "it waited first")

			// A write that lands while the read waits releases it.
			next := s.ledger.Applied().Seq + 1
			wrote := make(chan error, 1)
			go func() {
				time.Sleep(20 * time.Millisecond)
				_, _, _, err := s.ledger.CreateKey(context.Background(), writeside.ActorInit, keys.CreateCommand{Name: "while-waiting", Scope: "read"})
				wrote <- err
			}()
			r = s.get(t, fmt.Sprintf("/v1/keys?min_seq=%d", next), s.admin)
			require.NoError(t, <-wrote)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.Contains(t, string(r.body), "while-waiting")

			for _, bad := range []string{"abc", "-1", "1.5"} {
				r = s.get(t, "/v1/audit/events?min_seq="+bad, s.admin)
				require.Equal(t, http.StatusBadRequest, r.status, "min_seq=%s: %s", bad, r.body)
			}
		})
	}
}
