package witness_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify/witness"
)

func openSigned(t *testing.T, signer *checkpoint.Signer) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(eventstore.Options{Dir: filepath.Join(t.TempDir(), "data"), Signer: signer, CreateIfMissing: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newPusher(t *testing.T, s *eventstore.Store, signer *checkpoint.Signer, state string, logs *eventstoretest.Buffer, ws ...*testWitness) *witness.Pusher {
	t.Helper()
	var eps []witness.Endpoint
	for _, w := range ws {
		eps = append(eps, witness.Endpoint{URL: w.url, Vkey: w.vkey})
	}
	p, err := witness.NewPusher(witness.PusherConfig{Log: s, Chain: eventstore.DefaultChain, LogVkey: signer.VerifierKey(), Witnesses: eps,
		Quorum: len(eps), Interval: time.Second, Timeout: time.Second, StatePath: state, Client: http.DefaultClient,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	return p
}

// TestPusherKeepsTheCosignedCheckpointAndCatchesAFork pushes a real store's
// checkpoints to two witnesses, then offers them a fork signed with the
// same key: they refuse it, and the forked log fails CheckLog.
func TestPusherKeepsTheCosignedCheckpointAndCatchesAFork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/push")
	var ws []*testWitness
	for _, name := range []string{"witness.test/a", "witness.test/b"} {
		skey, _, err := witness.GenerateKey(rand.Reader, name)
		require.NoError(t, err)
		ws = append(ws, startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey()))
	}
	state := filepath.Join(t.TempDir(), "cosigned")
	logs := &eventstoretest.Buffer{}
	s := openSigned(t, signer)
	p := newPusher(t, s, signer, state, logs, ws...)
	require.Nil(t, p.Cosigned())
	for round := range 3 {
		_, err := s.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(2*round), eventstoretest.Draft(2*round+1))
		require.NoError(t, err)
		p.PushOnce(ctx)
		msg := p.Cosigned()
		names, err := witness.CheckCosigned(msg, signer.VerifierKey(), []string{ws[0].vkey, ws[1].vkey}, 2)
		require.NoError(t, err, "round %d: %s", round, logs.String())
		require.Len(t, names, 2)
		require.Equal(t, uint64(2*round+2), mustParse(t, msg).Size)
	}
	require.NoError(t, p.CheckLog(ctx))
	// A new pusher reads the kept checkpoint back.
	require.Equal(t, p.Cosigned(), newPusher(t, s, signer, state, logs, ws...).Cosigned())

	// A fork: other records under the same key, longer than the original.
	fork := openSigned(t, signer)
	for i := range 8 {
		_, err := fork.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(100+i))
		require.NoError(t, err)
	}
	fp := newPusher(t, fork, signer, state, logs, ws...)
	require.ErrorIs(t, fp.CheckLog(ctx), witness.ErrInconsistent)
	// Without the kept checkpoint (deleted by whoever holds the folder),
	// the witnesses themselves still contradict the fork at start.
	bare := newPusher(t, fork, signer, filepath.Join(t.TempDir(), "none"), logs, ws...)
	require.NoError(t, bare.CheckLog(ctx), "nothing kept, nothing to check locally")
	require.ErrorIs(t, bare.CheckWitnesses(ctx), witness.ErrInconsistent)
	// A truncation (a prefix of the original) is contradicted too, and the
	// original log itself passes.
	short := openSigned(t, signer)
	_, err := short.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(0), eventstoretest.Draft(1))
	require.NoError(t, err)
	require.ErrorIs(t, newPusher(t, short, signer, filepath.Join(t.TempDir(), "none"), logs, ws...).CheckWitnesses(ctx), witness.ErrInconsistent)
	require.NoError(t, newPusher(t, s, signer, filepath.Join(t.TempDir(), "none"), logs, ws...).CheckWitnesses(ctx))
	fp.PushOnce(ctx)
	require.Equal(t, p.Cosigned(), fp.Cosigned(), "no witness cosigned the fork")
	for _, w := range ws {
		require.Contains(t, w.logs.String(), "WITNESS REFUSED AN INCONSISTENT CHECKPOINT")
	}
}

func mustParse(t *testing.T, msg []byte) checkpoint.Checkpoint {
	t.Helper()
	cp, err := checkpoint.Parse(checkpoint.Text(msg))
	require.NoError(t, err)
	return cp
}

// TestCheckWitnessesRefusesALogSignedWithAnotherKey: the same origin
// signed by a new key (the signing key replaced, or the folder
// re-initialised) is refused by the witness with 403. At start that is an
// error naming the witness and the key; while running it is only logged.
func TestCheckWitnessesRefusesALogSignedWithAnotherKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/rekey")
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/a")
	require.NoError(t, err)
	w := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey())
	logs := &eventstoretest.Buffer{}

	s := openSigned(t, signer)
	_, err = s.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(0), eventstoretest.Draft(1))
	require.NoError(t, err)
	require.NoError(t, newPusher(t, s, signer, filepath.Join(t.TempDir(), "none"), logs, w).CheckWitnesses(ctx))

	other := eventstoretest.NewSigner(t, "custos.test/rekey")
	_, err = witness.AddCheckpoint(ctx, http.DefaultClient, w.url, 0, nil, mustSigned(t, other))
	require.ErrorIs(t, err, witness.ErrKeyRefused, "a 403 is ErrKeyRefused")

	rekeyed := openSigned(t, other)
	_, err = rekeyed.Append(ctx, eventstore.DefaultChain, eventstoretest.Draft(0), eventstoretest.Draft(1), eventstoretest.Draft(2))
	require.NoError(t, err)
	p := newPusher(t, rekeyed, other, filepath.Join(t.TempDir(), "none"), logs, w)
	err = p.CheckWitnesses(ctx)
	require.ErrorIs(t, err, witness.ErrKeyRefused)
	require.NotErrorIs(t, err, witness.ErrInconsistent, "nothing says the records were rewritten")
	require.Contains(t, err.Error(), "witness "+w.url)
	require.Contains(t, err.Error(), "the log's signing key (verifier key "+other.VerifierKey()+") is not the one the witness knows")

	// Running, the refusal is logged at error level and never returned.
	running := &eventstoretest.Buffer{}
	rp := newPusher(t, rekeyed, other, filepath.Join(t.TempDir(), "none"), running, w)
	rp.PushOnce(ctx)
	require.Nil(t, rp.Cosigned())
	require.Contains(t, running.String(), "level=ERROR")
	require.Contains(t, running.String(), "is not the one the witness knows")
}

// mustSigned is a checkpoint of size 1 signed by signer.
func mustSigned(t *testing.T, signer *checkpoint.Signer) []byte {
	t.Helper()
	msg, err := signer.Sign(checkpoint.Checkpoint{Origin: checkpoint.Origin(signer.Name(), eventstore.DefaultChain), Size: 1, Root: [32]byte{1}})
	require.NoError(t, err)
	return msg
}

// TestPusherCountersignsATenantChainForAWitnessOfTheDeploymentKey: a
// tenant's chain is signed by its derived key, which a witness following
// the deployment key refuses (403) unless the Pusher countersigns it.
func TestPusherCountersignsATenantChainForAWitnessOfTheDeploymentKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := eventstoretest.NewSigner(t, "custos.test/tenant")
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/a")
	require.NoError(t, err)
	w := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, signer.VerifierKey())
	s := openSigned(t, signer)
	_, err = s.Append(ctx, "acme", eventstoretest.Draft(0), eventstoretest.Draft(1))
	require.NoError(t, err)
	vkey, err := s.ChainVerifierKey("acme")
	require.NoError(t, err)
	logs := &eventstoretest.Buffer{}
	pusher := func(counter *checkpoint.Signer) *witness.Pusher {
		p, err := witness.NewPusher(witness.PusherConfig{Log: s, Chain: "acme", LogVkey: vkey, Countersigner: counter,
			Witnesses: []witness.Endpoint{{URL: w.url, Vkey: w.vkey}}, Quorum: 1, Interval: time.Second, Timeout: time.Second,
			StatePath: filepath.Join(t.TempDir(), "cosigned"), Client: http.DefaultClient, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		return p
	}
	err = pusher(nil).CheckWitnesses(ctx)
	require.ErrorIs(t, err, witness.ErrKeyRefused, "the witness knows no key named %s", signer.Name()+"/acme")
	require.Contains(t, err.Error(), "verifier key "+vkey)

	p := pusher(signer)
	require.NoError(t, p.CheckWitnesses(ctx))
	p.PushOnce(ctx)
	msg := p.Cosigned()
	_, err = witness.CheckCosigned(msg, vkey, []string{w.vkey}, 1)
	require.NoError(t, err, logs.String())
	require.NoError(t, p.CheckLog(ctx))
	require.Equal(t, uint64(2), w.w.Size("custos.test/tenant/acme"))

	// A deployment key the witness does not know: refused, and the error
	// names the key the witness checks, the deployment's.
	other := eventstoretest.NewSigner(t, "custos.test/tenant")
	err = pusher(other).CheckWitnesses(ctx)
	require.ErrorIs(t, err, witness.ErrKeyRefused)
	require.Contains(t, err.Error(), "verifier key "+other.VerifierKey())
}
