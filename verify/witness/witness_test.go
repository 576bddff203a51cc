package witness_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
	"github.com/custos-dev/custos/verify/witness"
)

// memLog is a tree over synthetic leaves; fork changes leaf i.
type memLog struct {
	leaves []tlog.Hash
	signer *checkpoint.Signer
}

func (l *memLog) hashes() tlog.HashReader {
	var stored []tlog.Hash
	for i, h := range l.leaves {
		hs, err := tlog.StoredHashes(int64(i), h[:], tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			panic(err)
		}
		stored = append(stored, hs...)
	}
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = stored[x]
		}
		return out, nil
	})
}

func (l *memLog) grow(n int, tag string) {
	for range n {
		l.leaves = append(l.leaves, tlog.RecordHash(fmt.Appendf(nil, "%s-%d", tag, len(l.leaves))))
	}
}

func (l *memLog) note(t *testing.T, size int) ([]byte, checkpoint.Checkpoint) {
	t.Helper()
	root, err := tlog.TreeHash(int64(size), l.hashes())
	require.NoError(t, err)
	cp := checkpoint.Checkpoint{Origin: checkpoint.Origin(l.signer.Name(), "default"), Size: uint64(size), Root: root}
	msg, err := l.signer.Sign(cp)
	require.NoError(t, err)
	return msg, cp
}

func (l *memLog) proof(t *testing.T, from, to int) []eventstore.Hash {
	t.Helper()
	if from == 0 || from == to {
		return nil
	}
	p, err := tlog.ProveTree(int64(to), int64(from), l.hashes())
	require.NoError(t, err)
	out := make([]eventstore.Hash, len(p))
	for i := range p {
		out[i] = eventstore.Hash(p[i])
	}
	return out
}

type testWitness struct {
	url, vkey, state string
	logs             *eventstoretest.Buffer
	close            func()
	w                *witness.Witness
}

func startWitness(t *testing.T, state, skey string, logKeys ...string) *testWitness {
	t.Helper()
	c, err := witness.NewCosigner(skey, time.Now)
	require.NoError(t, err)
	logs := &eventstoretest.Buffer{}
	w, err := witness.New(witness.Config{StatePath: state, Logs: logKeys, Cosigner: c, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &testWitness{url: srv.URL, vkey: c.VerifierKey(), state: state, logs: logs, close: srv.Close, w: w}
}

func post(t *testing.T, url, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestWitnessCosignsConsistentAndRefusesForks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := &memLog{signer: eventstoretest.NewSigner(t, "custos.test/log")}
	skey, vkey, err := witness.GenerateKey(rand.Reader, "witness.test/w1")
	require.NoError(t, err)
	state := filepath.Join(t.TempDir(), "state")
	w := startWitness(t, state, skey, log.signer.VerifierKey())
	require.Equal(t, vkey, w.vkey)

	log.grow(5, "a")
	msg5, _ := log.note(t, 5)
	sig, err := witness.AddCheckpoint(ctx, http.DefaultClient, w.url, 0, nil, msg5)
	require.NoError(t, err)
	names, err := witness.CheckCosigned(append(msg5, sig...), log.signer.VerifierKey(), []string{vkey}, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"witness.test/w1"}, names)

	// A wrong old size: 409 with the witness's size as text/x.tlog.size.
	log.grow(7, "a")
	msg12, _ := log.note(t, 12)
	code, ctype, body := post(t, w.url, "old 0\n\n"+string(msg12))
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, witness.ContentTypeSize, ctype)
	require.Equal(t, "5\n", body)
	_, err = witness.AddCheckpoint(ctx, http.DefaultClient, w.url, 3, log.proof(t, 3, 12), msg12)
	var conflict *witness.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, uint64(5), conflict.Size)

	// The consistent extension is cosigned.
	sig, err = witness.AddCheckpoint(ctx, http.DefaultClient, w.url, 5, log.proof(t, 5, 12), msg12)
	require.NoError(t, err)
	_, err = witness.CheckCosigned(append(msg12, sig...), log.signer.VerifierKey(), []string{vkey}, 1)
	require.NoError(t, err)

	// A rewrite of leaf 3 with everything recomputed: 422, logged loudly.
	forked := &memLog{signer: log.signer, leaves: append([]tlog.Hash(nil), log.leaves...)}
	forked.leaves[3] = tlog.RecordHash([]byte("rewritten"))
	forked.grow(4, "b")
	msg16, _ := forked.note(t, 16)
	code, _, body = post(t, w.url, proofBody(12, forked.proof(t, 12, 16))+string(msg16))
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, w.logs.String(), "WITNESS REFUSED AN INCONSISTENT CHECKPOINT")

	// A fork at the same size: 409.
	msgFork12, _ := forked.note(t, 12)
	_, err = witness.AddCheckpoint(ctx, http.DefaultClient, w.url, 12, nil, msgFork12)
	require.ErrorAs(t, err, &conflict)
	require.True(t, conflict.Fork)

	// Restarted on the same state file, it still holds 12 and refuses the fork.
	w.close()
	w2 := startWitness(t, state, skey, log.signer.VerifierKey())
	_, err = witness.AddCheckpoint(ctx, http.DefaultClient, w2.url, 0, nil, msgFork12)
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, uint64(12), conflict.Size)
	code, _, _ = post(t, w2.url, proofBody(12, forked.proof(t, 12, 16))+string(msg16))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	_, err = witness.AddCheckpoint(ctx, http.DefaultClient, w2.url, 12, nil, msg12)
	require.NoError(t, err, "the same checkpoint again is cosigned again")
}

func proofBody(old int, proof []eventstore.Hash) string {
	var b strings.Builder
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(tlog.Hash(h).String() + "\n")
	}
	return b.String() + "\n"
}

func TestWitnessRejectsBadRequests(t *testing.T) {
	t.Parallel()
	log := &memLog{signer: eventstoretest.NewSigner(t, "custos.test/log")}
	other := &memLog{signer: eventstoretest.NewSigner(t, "custos.test/log")} // same name, another key
	stranger := &memLog{signer: eventstoretest.NewSigner(t, "elsewhere.test/log")}
	skey, _, err := witness.GenerateKey(rand.Reader, "witness.test/w1")
	require.NoError(t, err)
	w := startWitness(t, filepath.Join(t.TempDir(), "state"), skey, log.signer.VerifierKey())
	log.grow(4, "a")
	other.leaves, stranger.leaves = log.leaves, log.leaves
	msg, _ := log.note(t, 4)
	otherMsg, _ := other.note(t, 4)
	strangerMsg, _ := stranger.note(t, 4)
	junk := sha256.Sum256(nil)
	for _, tc := range []struct {
		name string
		body string
		code int
	}{
		{"no old line", string(msg), http.StatusBadRequest},
		{"leading zero", "old 00\n\n" + string(msg), http.StatusBadRequest},
		{"old above size", "old 5\n\n" + string(msg), http.StatusBadRequest},
		{"proof from zero", proofBody(0, []eventstore.Hash{junk}) + string(msg), http.StatusBadRequest},
		{"bad proof line", "old 0\nnot-base64\n\n" + string(msg), http.StatusBadRequest},
		{"too many proof lines", proofBody(0, make([]eventstore.Hash, 64)) + string(msg), http.StatusBadRequest},
		{"not a checkpoint", "old 0\n\nhello\n", http.StatusBadRequest},
		{"unknown origin", "old 0\n\n" + string(strangerMsg), http.StatusNotFound},
		{"signed by another key", "old 0\n\n" + string(otherMsg), http.StatusForbidden},
	} {
		code, _, body := post(t, w.url, tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.name, body)
	}
	code, _, _ := post(t, w.url, "old 0\n\n"+string(msg))
	require.Equal(t, http.StatusOK, code, "nothing above changed the state")
}

func TestCosignatureRejectsTampering(t *testing.T) {
	t.Parallel()
	log := &memLog{signer: eventstoretest.NewSigner(t, "custos.test/log")}
	log.grow(3, "a")
	msg, _ := log.note(t, 3)
	skey, vkey, err := witness.GenerateKey(rand.Reader, "witness.test/w1")
	require.NoError(t, err)
	c, err := witness.NewCosigner(skey, func() time.Time { return time.Unix(1700000000, 0) })
	require.NoError(t, err)
	line, err := c.Cosign(checkpoint.Text(msg))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), "— witness.test/w1 "))
	_, err = witness.CheckCosigned(append(msg, line...), log.signer.VerifierKey(), []string{vkey}, 1)
	require.NoError(t, err)

	_, vkey2, err := witness.GenerateKey(rand.Reader, "witness.test/w2")
	require.NoError(t, err)
	_, err = witness.CheckCosigned(append(msg, line...), log.signer.VerifierKey(), []string{vkey, vkey2}, 2)
	require.ErrorIs(t, err, witness.ErrQuorum)

	tampered := []byte(strings.Replace(string(append(msg, line...)), "\n3\n", "\n4\n", 1))
	_, err = witness.CheckCosigned(tampered, log.signer.VerifierKey(), []string{vkey}, 1)
	require.Error(t, err)
	_, err = witness.NewCosignatureVerifier(log.signer.VerifierKey())
	require.ErrorIs(t, err, witness.ErrKey, "a log key (type 0x01) is not a cosignature key")
}
