package checkpoint_test

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

func newKey(t *testing.T, name string) (*checkpoint.Signer, *checkpoint.Verifier, string) {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, name)
	require.NoError(t, err)
	s, err := checkpoint.NewSigner(skey)
	require.NoError(t, err)
	require.Equal(t, vkey, s.VerifierKey(), "the verifier key derived from the signer key is x/mod's")
	v, err := checkpoint.NewVerifier(vkey)
	require.NoError(t, err)
	return s, v, vkey
}

func TestTextAndParse(t *testing.T) {
	t.Parallel()
	c := checkpoint.Checkpoint{Origin: checkpoint.Origin("custos.test/a", "default"), Size: 7, Root: sha256.Sum256([]byte("r"))}
	require.Equal(t, "custos.test/a/default\n7\n"+"RUNJ5CLwUpcZHq0T4h09tSDlq+9SBV5JZLgvshP1k6E=\n", c.Text())
	got, err := checkpoint.Parse(c.Text())
	require.NoError(t, err)
	require.Equal(t, c, got)
	got, err = checkpoint.Parse(c.Text() + "extension line\n")
	require.NoError(t, err, "C2SP allows extension lines")
	require.Equal(t, c, got)

	root := "RUNJ5CLwUpcZHq0T4h09tSDlq+9SBV5JZLgvshP1k6E="
	for name, text := range map[string]string{
		"empty":          "",
		"no root":        "o\n7\n",
		"empty origin":   "\n7\n" + root + "\n",
		"leading zero":   "o\n07\n" + root + "\n",
		"signed size":    "o\n+7\n" + root + "\n",
		"size not a num": "o\nseven\n" + root + "\n",
		"short root":     "o\n7\nAAAA\n",
		"root not b64":   "o\n7\n" + strings.Repeat("!", 44) + "\n",
		"no final nl":    "o\n7\n" + root,
	} {
		_, err := checkpoint.Parse(text)
		require.ErrorIs(t, err, checkpoint.ErrMalformed, name)
	}
}

func TestSignOpen(t *testing.T) {
	t.Parallel()
	s, v, vkey := newKey(t, "custos.test/a")
	c := checkpoint.Checkpoint{Origin: checkpoint.Origin(s.Name(), "default"), Size: 3, Root: sha256.Sum256([]byte("x"))}
	msg, err := s.Sign(c)
	require.NoError(t, err)

	// x/mod alone opens it.
	xv, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	n, err := note.Open(msg, note.VerifierList(xv))
	require.NoError(t, err)
	require.Equal(t, c.Text(), n.Text)
	require.Equal(t, c.Text(), checkpoint.Text(msg))

	got, err := v.Open(msg, "default")
	require.NoError(t, err)
	require.Equal(t, c, got)
	got, err = v.Open(msg, "")
	require.NoError(t, err, "no chain given: any origin")
	require.Equal(t, c, got)

	_, err = v.Open(msg, "tenant-b")
	require.ErrorIs(t, err, checkpoint.ErrMalformed, "another chain's origin")

	_, other, _ := newKey(t, "custos.test/a")
	_, err = other.Open(msg, "default")
	require.ErrorIs(t, err, checkpoint.ErrSignature, "same name, another key")

	tampered := []byte(strings.Replace(string(msg), "\n3\n", "\n4\n", 1))
	_, err = v.Open(tampered, "default")
	require.ErrorIs(t, err, checkpoint.ErrSignature)

	// A cosignature by an unknown key is ignored.
	extra, _, err := note.GenerateKey(rand.Reader, "witness.test/w")
	require.NoError(t, err)
	ws, err := note.NewSigner(extra)
	require.NoError(t, err)
	cosigned, err := note.Sign(&note.Note{Text: c.Text()}, ws)
	require.NoError(t, err)
	both := append(append([]byte(nil), msg...), cosigned[len(c.Text())+1:]...)
	got, err = v.Open(both, "default")
	require.NoError(t, err)
	require.Equal(t, c, got)
}

func TestKeysRejectGarbage(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"", "nonsense", "PRIVATE+KEY+a+00000000+AAAA"} {
		_, err := checkpoint.NewSigner(k)
		require.Error(t, err, "%q", k)
	}
	for _, k := range []string{"", "nonsense", "a+00000000+AAAA"} {
		_, err := checkpoint.NewVerifier(k)
		require.Error(t, err, "%q", k)
	}
	_, _, err := checkpoint.GenerateKey(rand.Reader, "has space")
	require.Error(t, err)
}

func TestReceiptFormatParse(t *testing.T) {
	t.Parallel()
	s, _, _ := newKey(t, "custos.test/a")
	msg, err := s.Sign(checkpoint.Checkpoint{Origin: "custos.test/a/default", Size: 2, Root: sha256.Sum256(nil)})
	require.NoError(t, err)
	r := checkpoint.Receipt{Extra: []byte("record"), Index: 1, Proof: [][checkpoint.HashSize]byte{sha256.Sum256([]byte("p"))}, Checkpoint: msg}
	got, err := checkpoint.ParseReceipt(r.Format())
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.True(t, strings.HasPrefix(string(r.Format()), checkpoint.ReceiptHeader+"\nextra cmVjb3Jk\nindex 1\n"))

	for name, text := range map[string]string{
		"no empty line": checkpoint.ReceiptHeader + "\nindex 1\n",
		"header":        "c2sp.org/other\nindex 1\n\n" + string(msg),
		"no index":      checkpoint.ReceiptHeader + "\n\n" + string(msg),
		"index zero":    checkpoint.ReceiptHeader + "\nindex 01\n\n" + string(msg),
		"bad extra":     checkpoint.ReceiptHeader + "\nextra !!\nindex 1\n\n" + string(msg),
		"bad hash":      checkpoint.ReceiptHeader + "\nindex 1\nAAAA\n\n" + string(msg),
	} {
		_, err := checkpoint.ParseReceipt([]byte(text))
		require.ErrorIs(t, err, checkpoint.ErrMalformed, name)
	}
}
