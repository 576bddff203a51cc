// Package receipttest is a receipt verifier written the way a third party
// would write one: from docs/proofs.md alone, with only the standard
// library and golang.org/x/mod/sumdb/{note,tlog}, and no custos package.
// Its tests check a committed receipt; custos's own tests run Check on
// receipts from a live server, so that the two implementations cannot
// drift apart.
package receipttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Record is the envelope of a record, decoded from a receipt's extra data.
type Record struct {
	HashVersion uint16
	Chain       string
	Seq         uint64
	ID          string
	TimeNanos   int64
	Type        string
	Actor       string
	Payload     []byte
	PrevHash    [32]byte
}

// Check verifies a custos receipt (C2SP tlog-proof with the record encoding
// as extra data) against the log's note verifier key and returns the
// record it proves.
func Check(proof []byte, vkey string) (Record, error) {
	// 1. Split the proof lines from the checkpoint at the first empty line.
	head, cp, ok := bytes.Cut(proof, []byte("\n\n"))
	if !ok {
		return Record{}, errors.New("no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return Record{}, fmt.Errorf("first line %q", lines[0])
	}
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "extra ") || !strings.HasPrefix(lines[2], "index ") {
		return Record{}, errors.New("want extra and index lines")
	}
	extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
	if err != nil {
		return Record{}, fmt.Errorf("extra: %w", err)
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
	if err != nil || index < 0 {
		return Record{}, fmt.Errorf("index %q", lines[2])
	}
	var path tlog.RecordProof
	for _, l := range lines[3:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != 32 {
			return Record{}, fmt.Errorf("proof hash %q", l)
		}
		path = append(path, tlog.Hash(h))
	}

	// 2. Decode the record encoding (docs/hash-spec.md).
	rec, err := decode(extra)
	if err != nil {
		return Record{}, fmt.Errorf("extra data: %w", err)
	}
	if rec.Seq != uint64(index)+1 {
		return Record{}, fmt.Errorf("index %d holds seq %d, the record says seq %d", index, index+1, rec.Seq)
	}

	// 3. The checkpoint: a note signed by the key, origin KEYNAME/CHAIN.
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Record{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(cp, note.VerifierList(v))
	if err != nil {
		return Record{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	body := strings.SplitN(n.Text, "\n", 4)
	if len(body) < 4 {
		return Record{}, errors.New("checkpoint body")
	}
	// The deployment key (named NAME, chains default and system) signs
	// origin NAME/CHAIN; a tenant's chain key is named as its origin,
	// NAME/CHAIN.
	want := v.Name() + "/" + rec.Chain
	if strings.HasSuffix(v.Name(), "/"+rec.Chain) && body[0] == v.Name() {
		want = v.Name()
	}
	if body[0] != want {
		return Record{}, fmt.Errorf("origin %q, want %q", body[0], want)
	}
	size, err := strconv.ParseInt(body[1], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("checkpoint size %q", body[1])
	}
	root, err := base64.StdEncoding.DecodeString(body[2])
	if err != nil || len(root) != 32 {
		return Record{}, fmt.Errorf("checkpoint root %q", body[2])
	}

	// 4. The leaf is SHA-256(0x00 || extra); the proof binds it to the root.
	leaf := sha256.Sum256(append([]byte{0x00}, extra...))
	if err := tlog.CheckRecord(path, size, tlog.Hash(root), index, tlog.Hash(leaf)); err != nil {
		return Record{}, fmt.Errorf("inclusion: %w", err)
	}
	return rec, nil
}

// decode parses the canonical record encoding: u16 hash_version, then
// chain, u64 seq, id, u64 time (unix ns), type, actor, payload, each
// string a u32 length and its bytes, then the 32-byte prev_hash.
func decode(b []byte) (Record, error) {
	var r Record
	bad := false
	u := func(n int) uint64 {
		if len(b) < n {
			bad = true
			return 0
		}
		var v uint64
		switch n {
		case 2:
			v = uint64(binary.BigEndian.Uint16(b))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b))
		default:
			v = binary.BigEndian.Uint64(b)
		}
		b = b[n:]
		return v
	}
	str := func() []byte {
		n := u(4)
		if bad || uint64(len(b)) < n {
			bad = true
			return nil
		}
		s := b[:n]
		b = b[n:]
		return s
	}
	r.HashVersion = uint16(u(2))
	r.Chain = string(str())
	r.Seq = u(8)
	r.ID = string(str())
	r.TimeNanos = int64(u(8))
	r.Type = string(str())
	r.Actor = string(str())
	r.Payload = str()
	if bad || len(b) != 32 {
		return Record{}, errors.New("malformed record encoding")
	}
	copy(r.PrevHash[:], b)
	return r, nil
}
