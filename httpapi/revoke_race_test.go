package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/readside"
)

// TestRevokeUnderAFloodOverHTTP is the attack that was seen against the
// server: admin key X floods POST /v1/keys {"scope":"admin"} on 16
// connections while the bootstrap admin revokes X. The revocation answers
// 200, every flooding request answers 201 or 403 (never 5xx), and no key
// created by X is sequenced after X's key.revoked, round after round.
func TestRevokeUnderAFloodOverHTTP(t *testing.T) {
	t.Parallel()
	const rounds, conns = 25, 16
	s := newStack(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	t.Cleanup(client.CloseIdleConnections)
	post := func(key string) (int, error) {
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/keys", strings.NewReader(`{"name":"flood","scope":"admin"}`))
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	for round := range rounds {
		xID, x := s.createKey(t, fmt.Sprintf("x-%d", round), "admin", 0)
		var created, refused atomic.Int64
		stop := make(chan struct{})
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, err := post(x)
					switch {
					case err != nil:
						errs <- err
						return
					case code == http.StatusCreated:
						created.Add(1)
					case code == http.StatusForbidden:
						refused.Add(1)
						return // X is revoked: every later request is refused too
					default:
						errs <- fmt.Errorf("round %d: flooding POST answered %d", round, code)
						return
					}
				}
			})
		}
		for created.Load() < conns { // let the flood get going
			select {
			case err := <-errs:
				require.NoError(t, err)
			default:
			}
		}
		r := s.del(t, "/v1/keys/"+xID, s.admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
	ctx := context.Background()
	revokedAt := map[string]uint64{}
	require.NoError(t, s.store.Records(ctx, eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		if seq, ok := revokedAt[r.Actor]; ok {
			return fmt.Errorf("seq %d (%s) by %s after its revocation at seq %d", r.Seq, r.Type, r.Actor, seq)
		}
		if r.Type == "key.revoked" && r.Actor == s.adminID {
			revokedAt[revokedKeyID(t, r.Payload)] = r.Seq
		}
		return nil
	}))
	require.Len(t, revokedAt, rounds)
	report, err := readside.CheckAuthorization(ctx, s.store, eventstore.DefaultChain)
	require.NoError(t, err)
	require.Empty(t, report.Violations)
}

// revokedKeyID returns the key_id of a key.revoked payload.
func revokedKeyID(t *testing.T, payload []byte) string {
	t.Helper()
	var ev struct {
		KeyID string `json:"key_id"`
	}
	require.NoError(t, jsonUnmarshal(payload, &ev))
	require.NotEmpty(t, ev.KeyID)
	return ev.KeyID
}
