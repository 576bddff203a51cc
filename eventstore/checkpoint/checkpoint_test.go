package checkpoint_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// vectorSkey is the deployment key of the chain key vectors: seed bytes
// 0x00 to 0x1f, named custos.test/vectors (docs/proofs.md, "Chain keys").
const vectorSkey = "PRIVATE+KEY+custos.test/vectors+e973989a+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"

func TestChainKeyVectors(t *testing.T) {
	t.Parallel()
	s, err := checkpoint.NewSigner(vectorSkey)
	require.NoError(t, err)
	const deployment = "custos.test/vectors+e973989a+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
	require.Equal(t, deployment, s.VerifierKey())
	for _, tc := range []struct{ chain, seed, vkey string }{
		{"default", "", deployment},
		{"system", "", deployment},
		{"acme", "f84844582d47c6a654e819243dd5d513ee45e72240815946e51168e42b93037c", "custos.test/vectors/acme+18770561+ASHX75Fr0HLnPOJt+pXK8cvV/P+cyzbT2EdMBkZiogFw"},
		{"acme2", "344765b22de1013e5e67e147a7dca40f205dd91904f0fbe8db341196186f8b84", "custos.test/vectors/acme2+c6876e43+AXdVV6/gmeIPUUPly6RrZ1FD/wiDIj/aOo1d6M1Ebpee"},
	} {
		t.Run(tc.chain, func(t *testing.T) {
			d, err := s.ForChain(tc.chain)
			require.NoError(t, err)
			require.Equal(t, tc.vkey, d.VerifierKey())
			vk, err := s.VerifierKeyFor(tc.chain)
			require.NoError(t, err)
			require.Equal(t, tc.vkey, vk)
			if tc.seed == "" {
				require.Same(t, s, d, "chains default and system keep the deployment key")
				return
			}
			// The derivation by hand, as docs/proofs.md states it.
			deploySeed := make([]byte, 32)
			for i := range deploySeed {
				deploySeed[i] = byte(i)
			}
			m := hmac.New(sha256.New, deploySeed)
			m.Write([]byte("custos checkpoint key v1\x00" + tc.chain))
			seed := m.Sum(nil)
			require.Equal(t, tc.seed, hex.EncodeToString(seed))
			byHand, err := note.NewEd25519VerifierKey("custos.test/vectors/"+tc.chain, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
			require.NoError(t, err)
			require.Equal(t, tc.vkey, byHand)
		})
	}
}

func TestChainKeysSignOnlyTheirChain(t *testing.T) {
	t.Parallel()
	s, err := checkpoint.NewSigner(vectorSkey)
	require.NoError(t, err)
	chains := []string{"default", "system", "acme", "acme2"}
	for _, signed := range chains {
		d, err := s.ForChain(signed)
		require.NoError(t, err)
		again, err := s.ForChain(signed)
		require.NoError(t, err)
		require.Equal(t, d.VerifierKey(), again.VerifierKey(), "the derivation is deterministic")
		msg, err := d.Sign(checkpoint.Checkpoint{Origin: checkpoint.Origin(s.Name(), signed), Size: 1, Root: sha256.Sum256([]byte(signed))})
		require.NoError(t, err)
		for _, chain := range chains {
			vk, err := s.VerifierKeyFor(chain)
			require.NoError(t, err)
			v, err := checkpoint.NewVerifier(vk)
			require.NoError(t, err)
			cp, err := v.Open(msg, chain)
			if chain == signed || (checkpoint.UsesDeploymentKey(chain) && checkpoint.UsesDeploymentKey(signed)) {
				if chain != signed {
					require.ErrorIs(t, err, checkpoint.ErrMalformed, "the deployment key's %s checkpoint is not %s's", signed, chain)
					continue
				}
				require.NoError(t, err, "%s with its own key", chain)
				require.Equal(t, "custos.test/vectors/"+chain, cp.Origin)
				continue
			}
			require.ErrorIs(t, err, checkpoint.ErrSignature, "%s's checkpoint under %s's key", signed, chain)
		}
	}
	acme, err := s.ForChain("acme")
	require.NoError(t, err)
	_, err = acme.ForChain("acme2")
	require.Error(t, err, "a chain key derives no other chain's key")
	for _, bad := range []string{"", "a/b", "a+b"} {
		_, err = s.ForChain(bad)
		require.Error(t, err, "chain %q", bad)
	}
}

func TestOriginOK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, chain, origin string
		ok                 bool
	}{
		{"custos.example/prod", "default", "custos.example/prod/default", true},
		{"custos.example/prod/acme", "acme", "custos.example/prod/acme", true},
		{"custos.example/prod/acme", "acme", "custos.example/prod/acme/acme", true},
		{"custos.example/prod/acme", "acme2", "custos.example/prod/acme", false},
		{"custos.example/prod/acme2", "acme", "custos.example/prod/acme2", false},
		{"custos.example/prod", "acme", "custos.example/prod/acme2", false},
		{"custos.example/prod", "prod", "custos.example/prod", true}, // a deployment key named .../prod: harmless, it never signs that origin
		{"custos.example/prod", "default", "custos.example/prod", false},
	} {
		require.Equal(t, tc.ok, checkpoint.OriginOK(tc.key, tc.chain, tc.origin), "%+v", tc)
	}
}

// BenchmarkForChain is the cost of deriving a chain key, which eventstore
// pays once per chain (it caches the result).
func BenchmarkForChain(b *testing.B) {
	s, err := checkpoint.NewSigner(vectorSkey)
	require.NoError(b, err)
	for b.Loop() {
		if _, err := s.ForChain("acme"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCountersign: a tenant checkpoint countersigned by the deployment key
// opens under both keys, keeps the chain key's signature first, and only
// the deployment key countersigns only its own origins.
func TestCountersign(t *testing.T) {
	t.Parallel()
	deployment, dv, _ := newKey(t, "custos.test/cosign")
	acme, err := deployment.ForChain("acme")
	require.NoError(t, err)
	av, err := checkpoint.NewVerifier(acme.VerifierKey())
	require.NoError(t, err)
	cp := checkpoint.Checkpoint{Origin: "custos.test/cosign/acme", Size: 7, Root: [32]byte{7}}
	msg, err := acme.Sign(cp)
	require.NoError(t, err)
	_, err = dv.Open(msg, "acme")
	require.ErrorIs(t, err, checkpoint.ErrSignature, "a chain key's note does not open under the deployment key")

	both, err := deployment.Countersign(msg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(both), string(msg)), "the chain key's note comes first, unchanged")
	for _, v := range []*checkpoint.Verifier{dv, av} {
		got, err := v.Open(both, "acme")
		require.NoError(t, err, v.Name())
		require.Equal(t, cp, got)
	}

	for _, tc := range []struct {
		name   string
		signer *checkpoint.Signer
		msg    []byte
	}{
		{"a chain key", acme, msg},
		{"another deployment's origin", mustNewKey(t, "custos.test/other"), msg},
		{"not a note", deployment, []byte("garbage")},
		{"no signature line", deployment, []byte(cp.Text() + "\n")},
	} {
		_, err := tc.signer.Countersign(tc.msg)
		require.ErrorIs(t, err, checkpoint.ErrMalformed, tc.name)
	}
}

func mustNewKey(t *testing.T, name string) *checkpoint.Signer {
	s, _, _ := newKey(t, name)
	return s
}
