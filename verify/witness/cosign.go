// Package witness implements both sides of the C2SP tlog-witness protocol
// for custos's checkpoints: the witness an auditor runs (Witness, served by
// `custos witness serve`), the client serve uses to push checkpoints to
// witnesses (Pusher, AddCheckpoint), and the checks of C2SP tlog-cosignature
// cosignatures (cosignature/v1, Ed25519) that verify and serve apply
// (CheckCosigned).
//
// A cosignature is a note signature line by the witness's key over the
// message
//
//	cosignature/v1\ntime <unix seconds>\n<checkpoint body>
//
// whose signature bytes are the 8-byte big-endian timestamp followed by the
// 64-byte Ed25519 signature; the key ID is
// SHA-256(name || "\n" || 0x04 || public key)[:4]. Witness keys are written
// as note keys with algorithm byte 0x04: "NAME+hash+base64(0x04||pub)" for
// the verifier key, "PRIVATE+KEY+NAME+hash+base64(0x04||seed)" for the
// signer key.
//
// The package uses only eventstore (for proof types), eventstore/checkpoint
// and x/mod's note and tlog, as verify's rules require.
package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signature type byte of Ed25519 cosignature/v1
// keys (C2SP tlog-cosignature).
const algCosignatureV1 = 0x04

// ErrKey means a witness key is not an Ed25519 cosignature/v1 note key.
var ErrKey = errors.New("witness: not a cosignature/v1 key")

func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

// GenerateKey returns a new witness signer key and its verifier key, named
// name (for example "witness.auditor.example/w1").
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", fmt.Errorf("witness: generate key: %w", err)
	}
	if !validName(name) {
		return "", "", fmt.Errorf("%w: invalid name %q", ErrKey, name)
	}
	h := keyHash(name, pub)
	b64 := base64.StdEncoding.EncodeToString
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, b64(append([]byte{algCosignatureV1}, priv.Seed()...)))
	vkey = fmt.Sprintf("%s+%08x+%s", name, h, b64(append([]byte{algCosignatureV1}, pub...)))
	return skey, vkey, nil
}

// validName follows x/mod note: non-empty, no space, no plus, printable.
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "+ \t\n") && strings.IndexFunc(name, func(r rune) bool { return r < 0x21 || r == 0x7f }) < 0
}

// Cosigner signs cosignature/v1 cosignatures. It implements note.Signer;
// Sign takes the time from the clock given to NewCosigner. Safe for
// concurrent use.
type Cosigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	vkey string
	now  func() time.Time
}

// NewCosigner parses a witness signer key written by GenerateKey; now is
// the clock of the timestamps.
func NewCosigner(skey string, now func() time.Time) (*Cosigner, error) {
	f := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(f) != 5 || f[0] != "PRIVATE" || f[1] != "KEY" || !validName(f[2]) {
		return nil, fmt.Errorf("%w: want PRIVATE+KEY+NAME+hash+key", ErrKey)
	}
	raw, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: key material", ErrKey)
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	pub := priv.Public().(ed25519.PublicKey)
	h := keyHash(f[2], pub)
	if f[3] != fmt.Sprintf("%08x", h) {
		return nil, fmt.Errorf("%w: key hash %s does not match the key", ErrKey, f[3])
	}
	vkey := fmt.Sprintf("%s+%08x+%s", f[2], h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return &Cosigner{name: f[2], hash: h, priv: priv, vkey: vkey, now: now}, nil
}

// Name returns the witness's key name.
func (c *Cosigner) Name() string { return c.name }

// KeyHash returns the cosignature/v1 key ID.
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// VerifierKey returns the witness's verifier key.
func (c *Cosigner) VerifierKey() string { return c.vkey }

// Sign returns the timestamped signature of the checkpoint body msg.
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	ts := c.now().Unix()
	if ts < 0 {
		return nil, errors.New("witness: clock before 1970")
	}
	sig := make([]byte, 8, 8+ed25519.SignatureSize)
	binary.BigEndian.PutUint64(sig, uint64(ts))
	return append(sig, ed25519.Sign(c.priv, signedMessage(uint64(ts), msg))...), nil
}

func signedMessage(ts uint64, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("cosignature/v1\ntime ")
	b.WriteString(strconv.FormatUint(ts, 10))
	b.WriteByte('\n')
	b.Write(body)
	return b.Bytes()
}

// Cosign returns the cosignature line ("— NAME base64\n") of the
// checkpoint body text.
func (c *Cosigner) Cosign(text string) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: text}, c)
	if err != nil {
		return nil, fmt.Errorf("witness: cosign: %w", err)
	}
	return signed[len(text)+1:], nil
}

// CosignatureVerifier checks cosignature/v1 signatures of one witness key.
// It implements note.Verifier.
type CosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier parses a witness verifier key
// ("NAME+hash+base64(0x04||pub)").
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	f := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(f) != 3 || !validName(f[0]) {
		return nil, fmt.Errorf("%w: want NAME+hash+key, got %q", ErrKey, vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 cosignature/v1 key (type 0x04)", ErrKey, vkey)
	}
	pub := ed25519.PublicKey(raw[1:])
	h := keyHash(f[0], pub)
	if f[1] != fmt.Sprintf("%08x", h) {
		return nil, fmt.Errorf("%w: key hash %s does not match the key", ErrKey, f[1])
	}
	return &CosignatureVerifier{name: f[0], hash: h, pub: pub}, nil
}

// Name returns the witness's key name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the cosignature/v1 key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a cosignature/v1 of the checkpoint body
// msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.pub, signedMessage(ts, msg), sig[8:])
}

// ErrQuorum means a checkpoint carries fewer valid cosignatures than asked.
var ErrQuorum = errors.New("witness: not enough cosignatures")

// CheckCosigned checks that msg, a checkpoint that the log's key has
// signed (the caller checks that signature), carries valid cosignatures by
// at least quorum of the witness verifier keys vkeys. It returns the names
// of the witnesses whose cosignature verified. A signature line by one of
// these keys that does not verify is an error, as x/mod note.Open makes it.
func CheckCosigned(msg []byte, logVkey string, vkeys []string, quorum int) ([]string, error) {
	logV, err := note.NewVerifier(strings.TrimSpace(logVkey))
	if err != nil {
		return nil, fmt.Errorf("witness: log key: %w", err)
	}
	verifiers := []note.Verifier{logV}
	for _, k := range vkeys {
		v, err := NewCosignatureVerifier(k)
		if err != nil {
			return nil, err
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return nil, fmt.Errorf("witness: open cosigned checkpoint: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	for _, s := range n.Sigs {
		if s.Hash == logV.KeyHash() && s.Name == logV.Name() {
			continue
		}
		if !seen[s.Name] {
			seen[s.Name] = true
			names = append(names, s.Name)
		}
	}
	if len(names) < quorum {
		return names, fmt.Errorf("%w: %d of the %d witness keys cosigned, %d required", ErrQuorum, len(names), len(vkeys), quorum)
	}
	return names, nil
}
