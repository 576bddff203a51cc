package receipttest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/custos-dev/custos/verify/receipttest"
)

// The fixture is a receipt from a live server (TestReceipt in httpapi
// writes it with CUSTOS_UPDATE_RECEIPT=1) and the server's verifier key.
func fixture(t *testing.T) (receipt []byte, vkey string) {
	t.Helper()
	receipt, err := os.ReadFile("testdata/allow.tlog-proof")
	require.NoError(t, err)
	k, err := os.ReadFile("testdata/vkey")
	require.NoError(t, err)
	return receipt, strings.TrimSpace(string(k))
}

// split returns the receipt's lines before the checkpoint, and the
// checkpoint.
func split(t *testing.T, receipt []byte) ([]string, []byte) {
	t.Helper()
	head, cp, ok := bytes.Cut(receipt, []byte("\n\n"))
	require.True(t, ok)
	return strings.Split(string(head), "\n"), cp
}

func join(lines []string, cp []byte) []byte {
	return append([]byte(strings.Join(lines, "\n")+"\n\n"), cp...)
}

func TestCheckAcceptsAServerReceipt(t *testing.T) {
	t.Parallel()
	receipt, vkey := fixture(t)
	rec, err := receipttest.Check(receipt, vkey)
	require.NoError(t, err)
	require.Equal(t, "default", rec.Chain)
	require.Equal(t, "decision.made", rec.Type)
	require.Equal(t, uint64(8), rec.Seq)
	require.Len(t, rec.ID, 26)
	require.Contains(t, string(rec.Payload), `"decision":"ALLOW"`)
}

func TestCheckRejectsTampering(t *testing.T) {
	t.Parallel()
	receipt, vkey := fixture(t)
	lines, cp := split(t, receipt)
	tampered := map[string][]byte{}
	{ // record: one payload byte
		l := append([]string(nil), lines...)
		extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l[1], "extra "))
		require.NoError(t, err)
		extra[len(extra)-40] ^= 0x01
		l[1] = "extra " + base64.StdEncoding.EncodeToString(extra)
		tampered["record"] = join(l, cp)
	}
	{ // index
		l := append([]string(nil), lines...)
		l[2] = "index 6"
		tampered["index"] = join(l, cp)
	}
	{ // one proof hash
		l := append([]string(nil), lines...)
		h, err := base64.StdEncoding.DecodeString(l[3])
		require.NoError(t, err)
		h[31] ^= 0x01
		l[3] = base64.StdEncoding.EncodeToString(h)
		tampered["hash"] = join(l, cp)
	}
	{ // signature: one byte of the signature line
		sig := strings.Split(strings.TrimSuffix(string(cp), "\n"), "\n")
		last := sig[len(sig)-1]
		i := strings.LastIndexByte(last, ' ')
		raw, err := base64.StdEncoding.DecodeString(last[i+1:])
		require.NoError(t, err)
		raw[10] ^= 0x01
		sig[len(sig)-1] = last[:i+1] + base64.StdEncoding.EncodeToString(raw)
		tampered["signature"] = join(lines, []byte(strings.Join(sig, "\n")+"\n"))
	}
	for name, bad := range tampered {
		_, err := receipttest.Check(bad, vkey)
		require.Error(t, err, "accepts a tampered %s", name)
	}
}

// TestCheckRejectsAnotherOrigin re-signs the fixture's checkpoint with a
// key of another name: accepted when the origin names that key, rejected
// when the origin is still the first key's, though the signature is good.
func TestCheckRejectsAnotherOrigin(t *testing.T) {
	t.Parallel()
	receipt, _ := fixture(t)
	lines, cp := split(t, receipt)
	body, _, ok := bytes.Cut(cp, []byte("\n\n"))
	require.True(t, ok)
	skey, vkey, err := note.GenerateKey(rand.Reader, "other.example/log")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	sign := func(text string) []byte {
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		require.NoError(t, err)
		return msg
	}
	rest := string(body[bytes.IndexByte(body, '\n')+1:]) + "\n"

	_, err = receipttest.Check(join(lines, sign("other.example/log/default\n"+rest)), vkey)
	require.NoError(t, err, "the control: the other key's own origin")
	_, err = receipttest.Check(join(lines, sign(string(body)+"\n")), vkey)
	require.ErrorContains(t, err, "origin")
}
