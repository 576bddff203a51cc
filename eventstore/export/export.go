// Package export is the JSONL export format of a chain, the file auditors
// take home and verify offline (docs/export-format.md): one line per record
// carrying every hashed field in a form any JSON tool preserves. Write
// streams a chain from a log; ParseLine and Line.Record read it back
// strictly. It needs only eventstore, like verify.
package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos/eventstore"
)

// Line is one line of a JSONL export, the format auditors take home
// (docs/export-format.md). It carries every hashed field of a Record in a
// form that survives any JSON tool and lets anyone recompute the record hash
// with a JSON parser, base64, hex and SHA-256:
//
//   - seq and time_unix_nano are JSON strings of decimal digits, because
//     common tools (jq, JavaScript) read JSON numbers as IEEE doubles and
//     silently round integers above 2^53, and time_unix_nano is about 1.8e18;
//   - the payload is the exact stored bytes in standard base64;
//   - hashes are 64 lowercase hex digits.
//
// Time and Payload are for human readers only. Time must agree with
// TimeUnixNano (Record checks it); Payload is never checked nor hashed and
// must not be trusted.
type Line struct {
	// Seq is the record's seq in decimal, e.g. "42".
	Seq string `json:"seq"`
	// ID is the record's ULID.
	ID string `json:"id"`
	// Chain is the chain name.
	Chain string `json:"chain"`
	// Time is TimeUnixNano as RFC 3339 with nanoseconds in UTC, for humans.
	Time string `json:"time"`
	// TimeUnixNano is the hashed time: signed nanoseconds since the Unix
	// epoch in decimal.
	TimeUnixNano string `json:"time_unix_nano"`
	// Type is the stable wire name of the fact.
	Type string `json:"type"`
	// Actor is who caused the fact.
	Actor string `json:"actor"`
	// PayloadBase64 is the exact stored payload in standard base64 with
	// padding; these bytes are hashed.
	PayloadBase64 string `json:"payload_base64"`
	// Payload is an optional readable rendering of the payload (see
	// PayloadDecoder). It is not hashed and never verified.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PrevHash is the previous record's hash, lowercase hex.
	PrevHash string `json:"prev_hash"`
	// Hash is this record's hash, lowercase hex.
	Hash string `json:"hash"`
	// HashVersion is the record's hash_version (a JSON number: it is small).
	HashVersion uint16 `json:"hash_version"`
}

// FieldError reports an export line, or one field of it, that does not
// parse. It matches ErrMalformedRecord with errors.Is.
type FieldError struct {
	// Field is the JSON name of the field, e.g. "prev_hash", or empty when
	// the line as a whole is at fault (not a JSON object, unknown key...).
	Field string
	// Reason says what is wrong.
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", eventstore.ErrMalformedRecord, e.Reason)
	}
	return fmt.Sprintf("%v: field %s: %s", eventstore.ErrMalformedRecord, e.Field, e.Reason)
}

// Unwrap returns ErrMalformedRecord.
func (e *FieldError) Unwrap() error { return eventstore.ErrMalformedRecord }

// PayloadDecoder renders a payload of the given type as a readable JSON value
// for Line.Payload. It returns false to leave the line without one.
type PayloadDecoder func(typ string, payload []byte) (json.RawMessage, bool)

// JSONPayload is a PayloadDecoder for custos payloads, which are JSON
// objects: it returns the payload itself when it is a valid JSON object.
func JSONPayload(_ string, payload []byte) (json.RawMessage, bool) {
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 || p[0] != '{' || !json.Valid(payload) {
		return nil, false
	}
	return json.RawMessage(payload), true
}

// LineFromRecord returns the export line of r, without Payload.
func LineFromRecord(r eventstore.Record) Line {
	return Line{
		Seq:           strconv.FormatUint(r.Seq, 10),
		ID:            r.ID,
		Chain:         r.Chain,
		Time:          formatTime(r.Time.UnixNano()),
		TimeUnixNano:  strconv.FormatInt(r.Time.UnixNano(), 10),
		Type:          r.Type,
		Actor:         r.Actor,
		PayloadBase64: base64.StdEncoding.EncodeToString(r.Payload),
		PrevHash:      hex.EncodeToString(r.PrevHash[:]),
		Hash:          hex.EncodeToString(r.Hash[:]),
		HashVersion:   r.HashVersion,
	}
}

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

var (
	decimalUint = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	decimalInt  = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)
	lowerHex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Record parses l back into the Record it was made from. Every value must be
// in the one spelling the writer produces: decimal without sign or leading
// zeros (time_unix_nano may be negative), 64 lowercase hex digits, padded
// standard base64 without line breaks, and time equal to time_unix_nano
// formatted as RFC 3339 in UTC. seq must be at least 1. Payload is ignored.
// Errors are *FieldError naming the field and wrap ErrMalformedRecord.
// Record checks form only; whether the hash and links hold is for the
// verifier to say.
func (l Line) Record() (eventstore.Record, error) {
	r := eventstore.Record{Chain: l.Chain, ID: l.ID, Type: l.Type, Actor: l.Actor, HashVersion: l.HashVersion}
	if !decimalUint.MatchString(l.Seq) {
		return eventstore.Record{}, &FieldError{Field: "seq", Reason: fmt.Sprintf("%q is not an unsigned decimal integer without leading zeros", l.Seq)}
	}
	seq, err := strconv.ParseUint(l.Seq, 10, 64)
	if err != nil {
		return eventstore.Record{}, &FieldError{Field: "seq", Reason: fmt.Sprintf("%q is out of range", l.Seq)}
	}
	if seq == 0 {
		return eventstore.Record{}, &FieldError{Field: "seq", Reason: "must be at least 1"}
	}
	r.Seq = seq
	if !decimalInt.MatchString(l.TimeUnixNano) {
		return eventstore.Record{}, &FieldError{Field: "time_unix_nano", Reason: fmt.Sprintf("%q is not a decimal integer without leading zeros", l.TimeUnixNano)}
	}
	ns, err := strconv.ParseInt(l.TimeUnixNano, 10, 64)
	if err != nil {
		return eventstore.Record{}, &FieldError{Field: "time_unix_nano", Reason: fmt.Sprintf("%q is out of range", l.TimeUnixNano)}
	}
	r.Time = time.Unix(0, ns).UTC()
	if want := formatTime(ns); l.Time != want {
		return eventstore.Record{}, &FieldError{Field: "time", Reason: fmt.Sprintf("%q does not match time_unix_nano %s (want %q)", l.Time, l.TimeUnixNano, want)}
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(l.PayloadBase64)
	if err != nil {
		return eventstore.Record{}, &FieldError{Field: "payload_base64", Reason: "not standard base64: " + err.Error()}
	}
	if base64.StdEncoding.EncodeToString(payload) != l.PayloadBase64 {
		// The decoder skips line breaks; the format has none.
		return eventstore.Record{}, &FieldError{Field: "payload_base64", Reason: "not in canonical form (padded standard base64 without line breaks)"}
	}
	r.Payload = payload // fresh from the decoder: the Record owns it
	if r.PrevHash, err = parseHash("prev_hash", l.PrevHash); err != nil {
		return eventstore.Record{}, err
	}
	if r.Hash, err = parseHash("hash", l.Hash); err != nil {
		return eventstore.Record{}, err
	}
	return r, nil
}

func parseHash(field, s string) (eventstore.Hash, error) {
	var h eventstore.Hash
	if !lowerHex.MatchString(s) {
		return h, &FieldError{Field: field, Reason: fmt.Sprintf("%q is not %d lowercase hex digits", s, 2*eventstore.HashSize)}
	}
	_, _ = hex.Decode(h[:], []byte(s)) // cannot fail after the pattern check
	return h, nil
}

// fields lists the keys of an export line in the order their errors
// are reported; all but payload are required.
var fields = []string{"seq", "id", "chain", "time", "time_unix_nano", "type", "actor", "payload_base64", "payload", "prev_hash", "hash", "hash_version"}

// ParseLine decodes one export line (without its newline) strictly: it
// must be valid UTF-8 holding exactly one JSON object whose keys are those of
// Line, each at most once, all present except payload; string fields
// must be JSON strings (not null) and hash_version a JSON number. Key order
// and whitespace do not matter. It does not parse the values (see
// Line.Record).
//
// On error it still returns every field it could read, so a caller can name
// the line by its id. Errors are *FieldError and wrap
// ErrMalformedRecord; of several problems the first in Line's field
// order is reported, so the result does not depend on key order.
func ParseLine(line []byte) (Line, error) {
	var l Line
	if !utf8.Valid(line) {
		return l, &FieldError{Reason: "line is not valid UTF-8"}
	}
	raws, lineErr := splitObject(line)
	fieldErrs := map[string]error{}
	for _, key := range fields {
		raw, ok := raws[key]
		if !ok {
			if key != "payload" {
				fieldErrs[key] = &FieldError{Field: key, Reason: "missing"}
			}
			continue
		}
		if err := decodeField(&l, key, raw); err != nil {
			fieldErrs[key] = err
		}
	}
	if lineErr != nil {
		return l, lineErr
	}
	for _, key := range fields {
		if err := fieldErrs[key]; err != nil {
			return l, err
		}
	}
	return l, nil
}

// loneSurrogate reports whether the JSON string raw holds a \uXXXX escape
// of a surrogate that is not a high one followed by an escaped low one.
// Go's decoder reads such an escape as U+FFFD, so "\ud800" and "\ufffd"
// would verify alike: only the second spelling is accepted.
func loneSurrogate(raw []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		r, ok := hex4(i)
		if !ok {
			return false // json.Unmarshal reports the bad escape
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			low, ok := hex4(i + 6)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// splitObject returns the raw value of every key of the JSON object in
// line. It collects what it can before a syntax error and returns the first
// problem with the line as a whole.
func splitObject(line []byte) (map[string]json.RawMessage, error) {
	raws := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(line))
	syntax := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &FieldError{Reason: "not a JSON object: " + err.Error()}
	}
	tok, err := dec.Token()
	if err != nil {
		return raws, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return raws, &FieldError{Reason: fmt.Sprintf("not a JSON object (starts with %v)", tok)}
	}
	var first error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return raws, syntax(err)
		}
		key, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return raws, syntax(err)
		}
		_, known := fieldSet[key]
		_, seen := raws[key]
		switch {
		case !known && first == nil:
			first = &FieldError{Reason: fmt.Sprintf("unknown key %q", key)}
		case seen && first == nil:
			first = &FieldError{Field: key, Reason: "duplicate key"}
		}
		if known && !seen {
			raws[key] = raw
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return raws, syntax(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return raws, &FieldError{Reason: "trailing data after the JSON object"}
	}
	return raws, first
}

var fieldSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(fields))
	for _, f := range fields {
		m[f] = struct{}{}
	}
	return m
}()

func decodeField(l *Line, key string, raw json.RawMessage) error {
	switch key {
	case "payload":
		l.Payload = raw
		return nil
	case "hash_version":
		if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
			return &FieldError{Field: key, Reason: fmt.Sprintf("want a JSON number, got %s", raw)}
		}
		if err := json.Unmarshal(raw, &l.HashVersion); err != nil {
			return &FieldError{Field: key, Reason: fmt.Sprintf("%s is not an integer from 0 to %d", raw, math.MaxUint16)}
		}
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return &FieldError{Field: key, Reason: fmt.Sprintf("want a JSON string, got %s", raw)}
	}
	if loneSurrogate(raw) {
		return &FieldError{Field: key, Reason: `holds a \u escape of a lone UTF-16 surrogate (U+D800 to U+DFFF outside a pair), which JSON decoders turn into U+FFFD or reject: write U+FFFD itself`}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return &FieldError{Field: key, Reason: err.Error()}
	}
	switch key {
	case "seq":
		l.Seq = s
	case "id":
		l.ID = s
	case "chain":
		l.Chain = s
	case "time":
		l.Time = s
	case "time_unix_nano":
		l.TimeUnixNano = s
	case "type":
		l.Type = s
	case "actor":
		l.Actor = s
	case "payload_base64":
		l.PayloadBase64 = s
	case "prev_hash":
		l.PrevHash = s
	case "hash":
		l.Hash = s
	}
	return nil
}

// Write writes the records of chain with from <= seq <= to (from 0
// means 1, to 0 means no upper bound) to w as JSONL: one Line per
// record, in seq order, each followed by '\n', with non-ASCII text as UTF-8
// and no HTML escaping. It streams (constant memory, see Store.Scan) and sees
// only durable records. decode, if not nil, fills each line's readable
// Payload (see JSONPayload); a value it returns that is not valid JSON is an
// error.
//
// It writes records as they are stored, without checking their hashes: an
// export of a tampered store shows the tampering to the verifier. A record
// whose chain, id, type or actor is not valid UTF-8 cannot be written
// losslessly as JSON and stops the export with an error wrapping
// ErrMalformedRecord.
//
// n is the number of lines written. On error the output is incomplete and
// must be discarded. Write buffers internally and does not close w.
func Write(ctx context.Context, w io.Writer, s eventstore.Log, chain string, from, to uint64, decode PayloadDecoder) (n int, err error) {
	if to == 0 {
		to = math.MaxUint64
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	err = s.Scan(ctx, chain, from, to, func(seq uint64, stored []byte) error {
		v, err := eventstore.ParseStored(stored)
		if err != nil {
			return fmt.Errorf("export %s seq %d: %w", chain, seq, err)
		}
		r := v.Record()
		for _, f := range [...]struct{ name, value string }{{"chain", r.Chain}, {"id", r.ID}, {"type", r.Type}, {"actor", r.Actor}} {
			if !utf8.ValidString(f.value) {
				return fmt.Errorf("export %s seq %d: %w: %s is not valid UTF-8 and cannot be exported losslessly", chain, seq, eventstore.ErrMalformedRecord, f.name)
			}
		}
		line := LineFromRecord(r)
		if decode != nil {
			if p, ok := decode(r.Type, r.Payload); ok {
				line.Payload = p
			}
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("export %s seq %d: %w", chain, seq, err)
		}
		n++
		return nil
	})
	if ferr := bw.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("export %s: %w", chain, ferr)
	}
	return n, err
}
