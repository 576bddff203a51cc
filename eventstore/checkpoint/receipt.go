package checkpoint

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// ReceiptHeader is the first line of a receipt: C2SP tlog-proof version 1.
const ReceiptHeader = "c2sp.org/tlog-proof@v1"

// Receipt is a proof that one record is in a chain, in the C2SP
// tlog-proof form (https://c2sp.org/tlog-proof):
//
//	c2sp.org/tlog-proof@v1\n
//	extra <base64 std of Extra>\n          (left out when Extra is empty)
//	index <Index, decimal>\n
//	<base64 std of Proof[0]>\n ...          (leaf's sibling first)
//	\n
//	<Checkpoint, the signed note, verbatim>
//
// custos puts the record's canonical encoding in Extra, so that the leaf
// hash is SHA-256(0x00 || Extra). Extra is not authenticated by itself: a
// verifier trusts it only once the inclusion proof binds its hash to the
// signed root.
type Receipt struct {
	Extra      []byte
	Index      uint64
	Proof      [][HashSize]byte
	Checkpoint []byte
}

// Format returns the receipt's text.
func (r Receipt) Format() []byte {
	var b bytes.Buffer
	b.WriteString(ReceiptHeader + "\n")
	if len(r.Extra) > 0 {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(r.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(r.Index, 10) + "\n")
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseReceipt parses a receipt's text. It checks the form only: the
// caller verifies the checkpoint's signature and the inclusion proof.
func ParseReceipt(text []byte) (Receipt, error) {
	head, cp, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok {
		return Receipt{}, fmt.Errorf("%w: receipt has no empty line before its checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ReceiptHeader {
		return Receipt{}, fmt.Errorf("%w: receipt starts %q, want %q", ErrMalformed, lines[0], ReceiptHeader)
	}
	lines = lines[1:]
	var r Receipt
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return Receipt{}, fmt.Errorf("%w: receipt extra: %w", ErrMalformed, err)
		}
		r.Extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return Receipt{}, fmt.Errorf("%w: receipt has no index line", ErrMalformed)
	}
	raw := strings.TrimPrefix(lines[0], "index ")
	idx, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || strconv.FormatUint(idx, 10) != raw || idx > 1<<63-1 {
		return Receipt{}, fmt.Errorf("%w: receipt index %q", ErrMalformed, raw)
	}
	r.Index = idx
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != HashSize {
			return Receipt{}, fmt.Errorf("%w: receipt proof hash %q", ErrMalformed, l)
		}
		r.Proof = append(r.Proof, [HashSize]byte(h))
	}
	r.Checkpoint = cp
	return r, nil
}
