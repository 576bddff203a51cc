package witness_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify/witness"
)

// chainList is a Chains func that a test grows.
type chainList struct {
	mu     sync.Mutex
	chains []string
}

func (c *chainList) add(chain string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chains = append(c.chains, chain)
}

func (c *chainList) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.chains)
}

func newGroup(t *testing.T, s *eventstore.Store, signer *checkpoint.Signer, stateDir string, chains func() []string, logs *eventstoretest.Buffer, w *testWitness) *witness.Group {
	t.Helper()
	g, err := witness.NewGroup(witness.GroupConfig{Log: s, Signer: signer, Chains: chains,
		StatePath: func(chain string) string { return filepath.Join(stateDir, "cosigned."+chain) },
		Witnesses: []witness.Endpoint{{URL: w.url, Vkey: w.vkey}}, Quorum: 1,
		Interval: 20 * time.Millisecond, Timeout: time.Second, Client: http.DefaultClient,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// TestGroupCosignsEveryChainWithAWitnessOfTheDeploymentKey: the witness
// knows only the deployment verifier key, yet cosigns tenant chains (signed
// by their derived keys) because the Group countersigns what it pushes; a
// chain that appears after Start is pushed too; each chain keeps its own
// file, which serves the chain key's signature and the cosignature only.
// A store whose tenant chain is shorter than what the witness cosigned
// (a truncation) fails Start naming that chain.
func TestGroupCosignsEveryChainWithAWitnessOfTheDeploymentKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/group")
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/g")
	require.NoError(t, err)
	w := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey())
	s := openSigned(t, signer)
	for _, chain := range []string{"default", "system", "acme"} {
		_, err := s.Append(ctx, chain, eventstoretest.Draft(0), eventstoretest.Draft(1))
		require.NoError(t, err)
	}
	chains := &chainList{chains: []string{"acme", "default", "system"}}
	stateDir := t.TempDir()
	logs := &eventstoretest.Buffer{}
	g := newGroup(t, s, signer, stateDir, chains.list, logs, w)
	require.Nil(t, g.Cosigned("acme"), "nothing before Start")
	require.NoError(t, g.Start(ctx))

	requireCosigned := func(chain string, size uint64) {
		t.Helper()
		vkey, err := signer.VerifierKeyFor(chain)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			msg := g.Cosigned(chain)
			return msg != nil && mustParse(t, msg).Size == size
		}, 10*time.Second, 10*time.Millisecond, "chain %s: %s", chain, logs.String())
		msg := g.Cosigned(chain)
		names, err := witness.CheckCosigned(msg, vkey, []string{w.vkey}, 1)
		require.NoError(t, err, chain)
		require.Equal(t, []string{"witness.test/g"}, names)
		v, err := checkpoint.NewVerifier(vkey)
		require.NoError(t, err)
		_, err = v.Open(msg, chain)
		require.NoError(t, err)
		kept, err := os.ReadFile(filepath.Join(stateDir, "cosigned."+chain))
		require.NoError(t, err)
		require.Equal(t, msg, kept)
		if !checkpoint.UsesDeploymentKey(chain) {
			require.NotContains(t, string(msg), "— custos.test/group ", "the countersignature is for the witness, not kept")
		}
		require.Equal(t, size, w.w.Size(checkpoint.Origin(signer.Name(), chain)))
	}
	for _, chain := range []string{"acme", "default", "system"} {
		requireCosigned(chain, 2)
	}
	_, err = s.Append(ctx, "acme", eventstoretest.Draft(2))
	require.NoError(t, err)
	requireCosigned("acme", 3)

	// A chain created while running.
	_, err = s.Append(ctx, "beta", eventstoretest.Draft(0))
	require.NoError(t, err)
	chains.add("beta")
	requireCosigned("beta", 1)
	g.Close()

	// The same folder restarts fine; a store whose chain acme is shorter
	// than what was cosigned (the kept file and the witness both say so)
	// fails, naming the chain.
	require.NoError(t, newGroup(t, s, signer, stateDir, chains.list, logs, w).Start(ctx))
	short := openSigned(t, signer)
	for _, chain := range []string{"default", "system", "beta"} {
		_, err := short.Append(ctx, chain, eventstoretest.Draft(0), eventstoretest.Draft(1))
		require.NoError(t, err)
	}
	_, err = short.Append(ctx, "beta", eventstoretest.Draft(0))
	require.NoError(t, err)
	_, err = short.Append(ctx, "acme", eventstoretest.Draft(0), eventstoretest.Draft(1))
	require.NoError(t, err)
	err = newGroup(t, short, signer, stateDir, chains.list, logs, w).Start(ctx)
	require.ErrorIs(t, err, witness.ErrInconsistent)
	require.Contains(t, err.Error(), "chain acme: ")
	require.Contains(t, err.Error(), "truncated")
	// With nothing kept, the witness alone still catches it.
	err = newGroup(t, short, signer, t.TempDir(), chains.list, logs, w).Start(ctx)
	require.ErrorIs(t, err, witness.ErrInconsistent)
	require.Contains(t, err.Error(), "chain acme: ")
	require.Contains(t, err.Error(), "the witness holds size 3, the log only 2")
}

// TestGroupDoesNotPushANewChainThatContradictsItsKeptFile: a chain that
// appears while serving but has a kept cosigned checkpoint it contradicts
// is logged and not pushed, and its file is left as evidence.
func TestGroupDoesNotPushANewChainThatContradictsItsKeptFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/stale")
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/s")
	require.NoError(t, err)
	w := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey())
	stateDir := t.TempDir()
	logs := &eventstoretest.Buffer{}

	// A first life of chain acme, cosigned at size 3.
	old := openSigned(t, signer)
	_, err = old.Append(ctx, "acme", eventstoretest.Draft(0), eventstoretest.Draft(1), eventstoretest.Draft(2))
	require.NoError(t, err)
	g := newGroup(t, old, signer, stateDir, func() []string { return []string{"acme"} }, logs, w)
	require.NoError(t, g.Start(ctx))
	require.Eventually(t, func() bool { return g.Cosigned("acme") != nil }, 10*time.Second, 10*time.Millisecond, logs.String())
	g.Close()
	kept, err := os.ReadFile(filepath.Join(stateDir, "cosigned.acme"))
	require.NoError(t, err)

	// A store without acme starts; acme then appears with one record.
	s := openSigned(t, signer)
	_, err = s.Append(ctx, "default", eventstoretest.Draft(0))
	require.NoError(t, err)
	chains := &chainList{chains: []string{"default"}}
	g = newGroup(t, s, signer, stateDir, chains.list, logs, w)
	require.NoError(t, g.Start(ctx))
	_, err = s.Append(ctx, "acme", eventstoretest.Draft(9))
	require.NoError(t, err)
	chains.add("acme")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "CHAIN NOT PUSHED TO WITNESSES") && strings.Contains(logs.String(), "chain=acme")
	}, 10*time.Second, 10*time.Millisecond, logs.String())
	require.Nil(t, g.Cosigned("acme"))
	g.Close()
	after, err := os.ReadFile(filepath.Join(stateDir, "cosigned.acme"))
	require.NoError(t, err)
	require.Equal(t, kept, after, "the kept checkpoint is evidence: left as it was")
	require.Equal(t, uint64(3), w.w.Size(checkpoint.Origin(signer.Name(), "acme")))
}

// TestGroupStartWaitsForADownWitnessOnce: a witness that accepts
// connections and never answers times out for the first chains checked;
// the chains checked after them do not ask it again, so the start takes
// about one timeout, not one per chain (64 chains, 8 at a time, would be
// 8 timeouts). The live witness still checks every chain.
func TestGroupStartWaitsForADownWitnessOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/down")
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/up")
	require.NoError(t, err)
	up := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey())
	_, downVkey, err := witness.GenerateKey(rand.Reader, "witness.test/down")
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		var held []net.Conn // never answered
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	s := openSigned(t, signer)
	var chains []string
	for i := range 64 {
		chain := fmt.Sprintf("t%02d", i)
		chains = append(chains, chain)
		_, err := s.Append(ctx, chain, eventstoretest.Draft(i))
		require.NoError(t, err)
	}
	logs := &eventstoretest.Buffer{}
	const timeout = 500 * time.Millisecond
	g, err := witness.NewGroup(witness.GroupConfig{Log: s, Signer: signer, Chains: func() []string { return chains },
		StatePath: func(chain string) string { return filepath.Join(t.TempDir(), chain) },
		Witnesses: []witness.Endpoint{{URL: up.url, Vkey: up.vkey}, {URL: "http://" + ln.Addr().String(), Vkey: downVkey}}, Quorum: 1,
		Interval: time.Hour, Timeout: timeout, Client: http.DefaultClient, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	start := time.Now()
	require.NoError(t, g.Start(ctx))
	took := time.Since(start)
	require.Less(t, took, 4*timeout, "the start asked the down witness for more than the first chains")
	for _, chain := range chains {
		require.Equal(t, uint64(1), up.w.Size(checkpoint.Origin(signer.Name(), chain)), "the live witness saw chain %s at start", chain)
	}
}
