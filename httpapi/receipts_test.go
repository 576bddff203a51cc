package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/verify"
	"github.com/custos-dev/custos/verify/receipttest"
)

// updateReceiptEnv, set to 1, makes TestReceipt write the receipt it
// fetched and its verifier key to verify/receipttest/testdata, the
// standalone verifier's fixture.
const updateReceiptEnv = "CUSTOS_UPDATE_RECEIPT"

// TestReceipt fetches the receipt of an ALLOW and of a DENY through the
// Go client and checks each with verify.Receipt and with the standalone
// verifier of package receipttest (x/mod's note and tlog only); both must
// reject a tampered record, index, proof hash, signature and origin.
func TestReceipt(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	c, err := client.New(e.srv.URL, client.WithAPIKey(e.admin))
	require.NoError(t, err)
	vkey := e.signer.VerifierKey()
	v, err := checkpoint.NewVerifier(vkey)
	require.NoError(t, err)

	for _, body := range []string{
		evalBody("receipt-s1", "crm", "low", "kyc"),
		evalBody("receipt-s2", "hr_records", "low", "kyc"),
	} {
		r := e.evaluate(t, e.agentKey, body)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var d wire.Decision
		require.NoError(t, json.Unmarshal(r.body, &d))
		require.Equal(t, d.Seq-1, d.LeafIndex)

		receipt, err := c.Receipt(t.Context(), d.EventID)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(receipt, []byte("c2sp.org/tlog-proof@v1\nextra ")), "%s", receipt)
		assert.Contains(t, string(receipt), "\nindex "+strconv.FormatUint(d.LeafIndex, 10)+"\n")

		got, err := verify.Receipt(receipt, v)
		require.NoError(t, err, "%s", receipt)
		assert.Equal(t, d.EventID, got.ID)
		assert.Equal(t, d.Seq, got.Seq)
		assert.Equal(t, "decision.made", got.Type)
		assert.Equal(t, "custos.test/api/default", got.Origin)
		assert.GreaterOrEqual(t, got.TreeSize, d.Seq)
		rec, err := receipttest.Check(receipt, vkey)
		require.NoError(t, err, "%s", receipt)
		assert.Equal(t, d.EventID, rec.ID)

		for name, bad := range tamperedReceipts(t, receipt, e.signer) {
			_, err := verify.Receipt(bad, v)
			require.ErrorIs(t, err, verify.ErrReceipt, "verify.Receipt accepts a tampered %s:\n%s", name, bad)
			_, err = receipttest.Check(bad, vkey)
			require.Error(t, err, "receipttest accepts a tampered %s:\n%s", name, bad)
		}
		if os.Getenv(updateReceiptEnv) == "1" && d.Decision == "ALLOW" {
			dir := filepath.Join("..", "verify", "receipttest", "testdata")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "allow.tlog-proof"), receipt, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "vkey"), []byte(vkey+"\n"), 0o644))
		}
	}

	for _, id := range []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-ulid"} {
		_, err := c.Receipt(t.Context(), id)
		apiErr, ok := errors.AsType[*client.APIError](err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, http.StatusNotFound, apiErr.Status)
	}
}

// tamperedReceipts returns receipt changed in each way a verifier must
// catch: the record (one payload byte), the index, one proof hash, the
// signature, and the origin (a checkpoint of the same tree validly signed
// by the same key under another chain's origin).
func tamperedReceipts(t *testing.T, receipt []byte, signer *checkpoint.Signer) map[string][]byte {
	t.Helper()
	r, err := checkpoint.ParseReceipt(receipt)
	require.NoError(t, err)
	cp, err := checkpoint.Parse(checkpoint.Text(r.Checkpoint))
	require.NoError(t, err)
	out := map[string][]byte{}

	rec := r
	rec.Extra = bytes.Clone(r.Extra)
	rec.Extra[len(rec.Extra)-40] ^= 0x01 // in the payload, before prev_hash
	out["record"] = rec.Format()

	idx := r
	idx.Index++
	out["index"] = idx.Format()

	if len(r.Proof) > 0 {
		h := r
		h.Proof = append([][32]byte(nil), r.Proof...)
		h.Proof[len(h.Proof)-1][0] ^= 0x80
		out["hash"] = h.Format()
	}

	sig := r
	lines := strings.Split(strings.TrimSuffix(string(r.Checkpoint), "\n"), "\n")
	last := lines[len(lines)-1] // "— NAME base64"
	i := strings.LastIndexByte(last, ' ')
	raw, err := base64.StdEncoding.DecodeString(last[i+1:])
	require.NoError(t, err)
	raw[len(raw)-1] ^= 0x01
	lines[len(lines)-1] = last[:i+1] + base64.StdEncoding.EncodeToString(raw)
	sig.Checkpoint = []byte(strings.Join(lines, "\n") + "\n")
	out["signature"] = sig.Format()

	origin := r
	cp.Origin = checkpoint.Origin(signer.Name(), "other")
	origin.Checkpoint, err = signer.Sign(cp)
	require.NoError(t, err)
	out["origin"] = origin.Format()
	return out
}

// TestEvaluateWithReceipt asks evaluate for the receipt: it comes in the
// answer and checks offline; a bad header value decides nothing.
func TestEvaluateWithReceipt(t *testing.T) {
	t.Parallel()
	e := newEvalStack(t)
	vkey := e.signer.VerifierKey()
	post := func(session, header string) response {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/context/evaluate", strings.NewReader(evalBody(session, "crm", "low", "kyc")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", e.agentKey)
		req.Header.Set(wire.ReceiptHeader, header)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return response{status: resp.StatusCode, body: b}
	}
	r := post("with-receipt", "true")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var d wire.Decision
	require.NoError(t, json.Unmarshal(r.body, &d))
	rec, err := receipttest.Check([]byte(d.Receipt), vkey)
	require.NoError(t, err, "%s", d.Receipt)
	assert.Equal(t, d.EventID, rec.ID)

	for _, bad := range []string{"yes", "TRUE", ""} {
		r := post("bad-receipt-header", bad)
		require.Equal(t, http.StatusBadRequest, r.status, "%q: %s", bad, r.body)
		assert.Contains(t, string(r.body), wire.ReceiptHeader)
	}
	require.NoError(t, e.store.Records(t.Context(), eventstore.DefaultChain, 1, 0, func(r eventstore.Record) error {
		require.NotContains(t, string(r.Payload), "bad-receipt-header", "a refused request decided nothing")
		return nil
	}))
}
