// Package checkpoint formats, signs and opens the signed tree heads of
// custos's chains, in the C2SP tlog-checkpoint form: a signed note
// (golang.org/x/mod/sumdb/note, Ed25519) whose text is
//
//	<origin>\n<tree size, decimal>\n<base64 std of the 32-byte root>\n
//
// The origin names the deployment and the chain: a key named NAME signs the
// checkpoints of chain C with origin NAME/C (see Origin). Anyone holding the
// verifier key (note verifier format, "NAME+hash+base64") can check a
// checkpoint with x/mod's note.Open alone.
//
// The package knows nothing of Pebble or records; eventstore signs with it
// and verify opens with it.
package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// HashSize is the size of a tree root.
const HashSize = 32

// ErrMalformed means a checkpoint's text is not a tlog-checkpoint body.
var ErrMalformed = errors.New("checkpoint: malformed")

// ErrSignature means a checkpoint carries no valid signature by the
// expected key.
var ErrSignature = errors.New("checkpoint: no valid signature by the expected key")

// Checkpoint is the body of a signed tree head.
type Checkpoint struct {
	// Origin names the log: NAME/chain.
	Origin string
	// Size is the number of leaves (records) the tree covers.
	Size uint64
	// Root is the RFC 6962 Merkle tree hash of the first Size leaves.
	Root [HashSize]byte
}

// Origin returns the origin of chain's checkpoints under a key named name.
func Origin(name, chain string) string { return name + "/" + chain }

// Text returns the checkpoint body: origin, size and base64 root, each on a
// line of its own.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// Parse parses a checkpoint body. Extension lines after the root are
// allowed by C2SP and ignored.
func Parse(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines", ErrMalformed)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrMalformed, lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root %q", ErrMalformed, lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// Signer signs checkpoints with an Ed25519 note key and knows its own
// verifier key. Safe for concurrent use.
type Signer struct {
	signer note.Signer
	vkey   string
}

// NewSigner parses a note signer key ("PRIVATE+KEY+NAME+hash+base64").
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: signer key: %w", err)
	}
	// The key's last field is base64(0x01 || Ed25519 seed); the verifier
	// key is derived from the seed's public key.
	fields := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	raw, err := base64.StdEncoding.DecodeString(fields[len(fields)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("checkpoint: signer key is not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: verifier key: %w", err)
	}
	return &Signer{signer: s, vkey: vkey}, nil
}

// GenerateKey returns a new Ed25519 signer key and its verifier key, named
// name (for example "custos.example/acme").
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	// x/mod generates keys for any name, but signs only with valid ones.
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == '+' || r == 0x7f }) >= 0 {
		return "", "", fmt.Errorf("checkpoint: key name %q: want no spaces, control characters or '+'", name)
	}
	skey, vkey, err = note.GenerateKey(rand, name)
	if err != nil {
		return "", "", fmt.Errorf("checkpoint: generate key %q: %w", name, err)
	}
	return skey, vkey, nil
}

// Name returns the key's name, the prefix of every origin it signs.
func (s *Signer) Name() string { return s.signer.Name() }

// VerifierKey returns the note verifier key of s.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the signed note of c.
func (s *Signer) Sign(c Checkpoint) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: c.Text()}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign %s size %d: %w", c.Origin, c.Size, err)
	}
	return msg, nil
}

// Verifier checks checkpoints signed by one key.
type Verifier struct {
	v note.Verifier
}

// NewVerifier parses a note verifier key ("NAME+hash+base64").
func NewVerifier(vkey string) (*Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: verifier key: %w", err)
	}
	return &Verifier{v: v}, nil
}

// Name returns the key's name.
func (v *Verifier) Name() string { return v.v.Name() }

// Open checks that msg is a note signed by v's key and returns its
// checkpoint. Signatures by other keys (witness cosignatures) are allowed.
// When chain is not empty, the origin must be Origin(v.Name(), chain).
func (v *Verifier) Open(msg []byte, chain string) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v.v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w (%s): %w", ErrSignature, v.v.Name(), err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if chain != "" && c.Origin != Origin(v.v.Name(), chain) {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %q", ErrMalformed, c.Origin, Origin(v.v.Name(), chain))
	}
	return c, nil
}

// Text returns the unverified checkpoint body of a signed note, for error
// messages about notes that do not verify.
func Text(msg []byte) string {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return ""
	}
	return string(msg[:i+1])
}
