// Package checkpoint formats, signs and opens the signed tree heads of
// custos's chains, in the C2SP tlog-checkpoint form: a signed note
// (golang.org/x/mod/sumdb/note, Ed25519) whose text is
//
//	<origin>\n<tree size, decimal>\n<base64 std of the 32-byte root>\n
//
// The origin names the deployment and the chain: the checkpoints of chain
// C of a deployment whose signing key is named NAME carry origin NAME/C
// (see Origin). Chains "default" and "system" are signed with the
// deployment key itself (named NAME); every other chain (a tenant) with a
// key of its own derived from it (ForChain, named NAME/C, as its origin).
// Anyone holding the chain's verifier key (note verifier format,
// "KEYNAME+hash+base64") can check a checkpoint with x/mod's note.Open
// alone. The deployment verifier key does not give a chain's: deriving one
// needs the private seed (docs/proofs.md, "Chain keys").
//
// The package knows nothing of Pebble or records; eventstore signs with it
// and verify opens with it.
package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
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
	seed   []byte // the Ed25519 seed, for ForChain
	chain  string // "" for a deployment key, else the chain ForChain derived it for
}

// ChainKeyLabel prefixes the chain name in the HMAC message of ForChain.
const ChainKeyLabel = "custos checkpoint key v1\x00"

// UsesDeploymentKey reports whether chain is signed with the deployment key
// itself rather than a key of its own: chains "default" (the only chain of
// folders written before tenants, whose checkpoints the deployment key
// signed) and "system" (the tenant registry).
func UsesDeploymentKey(chain string) bool { return chain == "default" || chain == "system" }

// ForChain returns the key that signs chain's checkpoints: s itself when
// UsesDeploymentKey(chain), else the Ed25519 key whose seed is
// HMAC-SHA256(key: s's seed, message: ChainKeyLabel || chain), named
// Origin(s.Name(), chain). The same deployment key gives the same chain
// key on every node and every start, so there is no key file per chain.
// s must be a deployment key (from NewSigner); chain must be a valid key
// name part (chain names are: eventstore.ValidateChain). It allocates:
// callers that sign often cache the result.
func (s *Signer) ForChain(chain string) (*Signer, error) {
	if s.chain != "" {
		if chain == s.chain {
			return s, nil
		}
		return nil, fmt.Errorf("checkpoint: the key of chain %s derives no key for chain %s", s.chain, chain)
	}
	if UsesDeploymentKey(chain) {
		return s, nil
	}
	if chain == "" || strings.ContainsAny(chain, "/+") {
		return nil, fmt.Errorf("checkpoint: chain %q: want a chain name", chain)
	}
	mac := hmac.New(sha256.New, s.seed)
	mac.Write([]byte(ChainKeyLabel + chain))
	seed := mac.Sum(nil)
	name := Origin(s.Name(), chain)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: key of chain %s: %w", chain, err)
	}
	// vkey is NAME+hash+base64(0x01||pub); the signer key is
	// PRIVATE+KEY+NAME+hash+base64(0x01||seed).
	hash := strings.Split(vkey, "+")[1]
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, seed...))
	d, err := NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: key of chain %s: %w", chain, err)
	}
	d.chain = chain
	return d, nil
}

// VerifierKeyFor returns the verifier key of chain's checkpoints
// (ForChain(chain).VerifierKey()), for tools that hold the signing key and
// need only the verifier key.
func (s *Signer) VerifierKeyFor(chain string) (string, error) {
	d, err := s.ForChain(chain)
	if err != nil {
		return "", err
	}
	return d.VerifierKey(), nil
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
	return &Signer{signer: s, vkey: vkey, seed: raw[1:]}, nil
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

// Countersign returns msg, a checkpoint note signed by a chain key that s
// derived (ForChain), with s's own signature line appended after the ones
// it carries, so that whoever holds only the deployment verifier key (a
// witness following it: a key named NAME covers origins NAME/CHAIN) can
// check it too. s must be a deployment key, and msg's origin
// Origin(s.Name(), chain) for a chain; msg's signatures are not checked
// here (the caller signed it). Errors wrap ErrMalformed.
func (s *Signer) Countersign(msg []byte) ([]byte, error) {
	text := Text(msg)
	c, err := Parse(text)
	if err != nil {
		return nil, err
	}
	if s.chain != "" {
		return nil, fmt.Errorf("%w: the key of chain %s countersigns nothing", ErrMalformed, s.chain)
	}
	chain, ok := strings.CutPrefix(c.Origin, s.Name()+"/")
	if !ok || chain == "" || strings.ContainsAny(chain, "/+") {
		return nil, fmt.Errorf("%w: origin %q is not one of key %s's chains", ErrMalformed, c.Origin, s.Name())
	}
	if len(msg) <= len(text)+1 || !bytes.HasSuffix(msg, []byte("\n")) {
		return nil, fmt.Errorf("%w: the note does not end with a signature line", ErrMalformed)
	}
	signed, err := note.Sign(&note.Note{Text: text}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: countersign %s size %d: %w", c.Origin, c.Size, err)
	}
	return append(bytes.Clone(msg), signed[len(text)+1:]...), nil
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
// When chain is not empty, the origin must be the one v's key signs for
// chain (see OriginOK).
func (v *Verifier) Open(msg []byte, chain string) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v.v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w (%s): %w", ErrSignature, v.v.Name(), err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if name := v.v.Name(); chain != "" && !OriginOK(name, chain, c.Origin) {
		want := strconv.Quote(Origin(name, chain))
		if strings.HasSuffix(name, "/"+chain) {
			want = strconv.Quote(name) + " or " + want
		}
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %s", ErrMalformed, c.Origin, want)
	}
	return c, nil
}

// OriginOK reports whether origin is the origin of chain's checkpoints
// signed by a key named keyName: keyName/chain (the deployment key), or
// keyName itself when keyName ends in /chain (a chain key from ForChain,
// named as its origin). Chain names hold no '/', so neither case can be
// taken for another chain's.
func OriginOK(keyName, chain, origin string) bool {
	return origin == Origin(keyName, chain) || (origin == keyName && strings.HasSuffix(keyName, "/"+chain))
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
