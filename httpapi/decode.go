package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
)

// maxBodyBytes is the largest request body accepted (64 KiB); larger ones
// get 413.
const maxBodyBytes = 64 << 10

// bodies reads request bodies for one Server (decodeJSON). It keeps no
// state outside the Server: its caches live and die with it. The zero
// value is ready to use; it is safe for concurrent use.
//
// A body is read by one of two readers, then its top-level names are
// checked in one pass over the bytes (checkFieldNames: exact names, each
// at most once). The fast reader, goccy/go-json, takes only a zero, flat
// destination (see isFlat) and only bodies it and the name check fully
// accept. Everything else, and every rejection, goes to the fallback,
// encoding/json's Decoder with DisallowUnknownFields, so every detail a
// client sees comes from encoding/json or the name check, and
// FuzzDecodeBodyFastPath checks that the fast reader gives the same value
// and the same problem on any input.
type bodies struct {
	// types caches, per destination type, what reading it needs.
	types sync.Map // reflect.Type -> *bodyType
	// buffers recycles body buffers of up to maxPooledBody bytes.
	buffers sync.Pool // *[]byte
}

// bodyType is what bodies knows of one destination type.
type bodyType struct {
	// flat: the fast reader may take it (isFlat).
	flat bool
	// names are the JSON names of its fields, or nil when it is not a
	// pointer to a struct (nothing to check by name). Only read.
	names map[string]bool
}

func (b *bodies) typeOf(dst any) *bodyType {
	t := reflect.TypeOf(dst)
	if bt, ok := b.types.Load(t); ok {
		return bt.(*bodyType)
	}
	bt := &bodyType{flat: isFlat(t), names: jsonFieldNames(t)}
	b.types.Store(t, bt)
	return bt
}

// decodeJSON reads the request body into dst, strictly: the body must be one
// JSON object of dst's fields (exact names, each at most once) and nothing
// after it, sent as application/json. An empty body leaves dst as it is (every field absent).
// Errors are *echo.HTTPError: 413 too large, 415 not JSON, 400 anything
// malformed, with a detail that names the problem and the field.
func (s *Server) decodeJSON(c echo.Context, dst any) error {
	return s.bodies.decodeJSON(c, dst)
}

func (b *bodies) decodeJSON(c echo.Context, dst any) error {
	req := c.Request()
	if req.ContentLength > maxBodyBytes {
		return tooLarge()
	}
	bp, _ := b.buffers.Get().(*[]byte)
	if bp == nil {
		buf := make([]byte, 0, 2048)
		bp = &buf
	}
	body, err := readAll(http.MaxBytesReader(c.Response(), req.Body, maxBodyBytes), (*bp)[:0])
	defer func() {
		// Nothing decoded keeps pointing into body: encoding/json and
		// goccy/go-json copy strings (TestDecodeBodyDoesNotAliasBody).
		if cap(body) <= maxPooledBody {
			*bp = body[:0]
			b.buffers.Put(bp)
		}
	}()
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // Limits.BodyTimeout
			return echo.NewHTTPError(http.StatusRequestTimeout, "Request body not received in time; send it at once.")
		}
		return echo.NewHTTPError(http.StatusBadRequest, "Could not read the request body.")
	}
	if len(body) == 0 {
		return nil
	}
	if ct := req.Header.Get(echo.HeaderContentType); ct != echo.MIMEApplicationJSON && !isJSONMediaType(ct) {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json.")
	}
	if problem := b.decode(body, dst, true); problem != "" {
		return echo.NewHTTPError(http.StatusBadRequest, problem)
	}
	return nil
}

// decode decodes a non-empty JSON body into dst strictly (see decodeJSON)
// and returns "" or the problem, for a client. With fast, a flat, zero dst
// is first read by the fast reader; when it refuses anything, dst is
// zeroed again and the fallback reads the body. (Only a zero dst: decoders
// write into the arrays of slices already set, so a dst with values could
// not be restored.)
func (b *bodies) decode(body []byte, dst any, fast bool) string {
	// Both readers would turn invalid UTF-8 (and \u escapes of lone
	// surrogates) into U+FFFD and accept it: refuse it first.
	if problem := unicodeProblem(body); problem != "" {
		return problem
	}
	bt := b.typeOf(dst)
	if fast && bt.flat && reflect.ValueOf(dst).Elem().IsZero() {
		if gojson.Unmarshal(body, dst) == nil && checkFieldNames(body, bt.names) == "" {
			return ""
		}
		reflect.ValueOf(dst).Elem().SetZero()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "Malformed JSON: unexpected data after the JSON object."
	}
	return checkFieldNames(body, bt.names)
}

// unicodeProblem returns "" when body is valid UTF-8 and none of its \u
// escapes is half of a surrogate pair, else the problem for a client.
// utf8.Valid costs about a nanosecond per 16 bytes; bodies without a
// backslash skip the escape scan.
func unicodeProblem(body []byte) string {
	if !utf8.Valid(body) {
		i := 0
		for i < len(body) {
			r, n := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		if field := topLevelFieldAt(body, i); field != "" {
			return fmt.Sprintf("Invalid request: %s must be valid UTF-8 (byte 0x%02X at byte %d of the body).", field, body[i], i)
		}
		return fmt.Sprintf("Request body must be valid UTF-8: byte 0x%02X at byte %d is not.", body[i], i)
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return ""
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++ // the escaped character; "\\" is skipped whole
		if i >= len(body) || body[i] != 'u' {
			continue
		}
		r, ok := hex4(body, i+1)
		switch {
		case !ok, r < 0xd800 || r > 0xdfff:
			continue
		case r <= 0xdbff:
			if low, ok := hex4(body, i+7); ok && i+6 < len(body) && body[i+5] == '\\' && body[i+6] == 'u' && 0xdc00 <= low && low <= 0xdfff {
				i += 10
				continue
			}
		}
		if field := topLevelFieldAt(body, i-1); field != "" {
			return fmt.Sprintf("Invalid request: %s must be valid Unicode (\\u%04x at byte %d of the body is half of a surrogate pair).", field, r, i-1)
		}
		return fmt.Sprintf("Request body must be valid Unicode: \\u%04x at byte %d is half of a surrogate pair.", r, i-1)
	}
	return ""
}

// topLevelFieldAt returns the name of the top-level member of the JSON
// object in body whose name or value holds byte off, or "" when there is
// none or body is not an object this byte scan can follow. It does not
// need valid UTF-8.
func topLevelFieldAt(body []byte, off int) string {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return ""
	}
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] == '"' {
		end, _ := stringEnd(body, i)
		if end < 0 {
			return ""
		}
		name := body[i+1 : end-1]
		start := i
		i = skipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return ""
		}
		if i = skipValue(body, skipSpace(body, i+1)); i < 0 {
			return ""
		}
		if start <= off && off < i {
			if !utf8.Valid(name) || bytes.IndexByte(name, '\\') >= 0 {
				return "" // never echo what is itself broken
			}
			return string(name)
		}
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != ',' {
			return ""
		}
		i = skipSpace(body, i+1)
	}
	return ""
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// isFlat reports whether t points to a struct whose fields are all strings,
// booleans and numbers, or pointers to or slices of them: a struct with no
// nested objects, so DisallowUnknownFields has nothing to find below the top
// level that checkFieldNames does not, and no field has JSON methods of its
// own.
func isFlat(t reflect.Type) bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return false
	}
	st := t.Elem()
	for i := range st.NumField() {
		if !isScalarField(st.Field(i).Type) {
			return false
		}
	}
	return true
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func isScalarField(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// maxPooledBody is the largest body buffer bodies keeps for reuse.
const maxPooledBody = 16 << 10

// readAll is io.ReadAll into buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return buf, err
		}
	}
}

// isJSONMediaType reports whether the Content-Type ct is application/json,
// parameters allowed.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == echo.MIMEApplicationJSON
}

// checkFieldNames closes two gaps both readers leave open: they match
// field names case-insensitively ("NAME" sets name) and let a repeated
// field silently win. body must already have decoded. It returns a detail,
// or "" when every top-level name is one of names, exactly, and none
// repeats; a nil names (no struct) passes. It is one pass over the bytes
// (eachTopLevelName); FuzzCheckFieldNames checks it against encoding/json's
// tokenizer.
func checkFieldNames(body []byte, names map[string]bool) string {
	if names == nil {
		return ""
	}
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	problem := ""
	ok := eachTopLevelName(body, func(name []byte) bool {
		switch {
		case !names[string(name)]:
			problem = fmt.Sprintf("Unknown field %q.", name)
		case slices.ContainsFunc(seen, func(s []byte) bool { return bytes.Equal(s, name) }):
			problem = fmt.Sprintf("Field %q is given more than once.", name)
		default:
			seen = append(seen, name)
			return true
		}
		return false
	})
	if !ok && problem == "" {
		// Not reached for a body that decoded (FuzzCheckFieldNames): refuse
		// it rather than let a name through unchecked.
		return "Malformed JSON: the field names could not be read."
	}
	return problem
}

// eachTopLevelName calls fn with each top-level member name of the JSON
// object in body, in order, until fn returns false. body must be valid JSON
// (it has decoded); when it is not an object (null), fn is not called. It
// returns false when it stopped early or met something it does not expect.
// It is a single pass over the bytes: names without escapes are compared in
// place (fn must not keep name), others are unquoted by encoding/json.
func eachTopLevelName(body []byte, fn func(name []byte) bool) bool {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return true // null: nothing set
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return true
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return false
		}
		end, escaped := stringEnd(body, i)
		if end < 0 {
			return false
		}
		name := body[i+1 : end-1]
		if escaped || !isASCII(name) {
			var s string
			if err := json.Unmarshal(body[i:end], &s); err != nil {
				return false
			}
			name = []byte(s)
		}
		if !fn(name) {
			return false
		}
		i = skipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return false
		}
		if i = skipValue(body, skipSpace(body, i+1)); i < 0 {
			return false
		}
		i = skipSpace(body, i)
		if i >= len(body) {
			return false
		}
		switch body[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(body, i+1)
		default:
			return false
		}
	}
}

// isASCII reports whether b is printable ASCII, which a JSON string holds
// verbatim.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at b[i] == '"', and whether it contains escapes; -1 if unclosed.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index after the JSON value that starts at b[i], or
// -1. It trusts b to be valid JSON: it only tracks nesting and strings.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := stringEnd(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// jsonFieldNames returns the JSON names of the fields of the struct t
// points to, or nil when t is not a pointer to a struct.
func jsonFieldNames(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

func tooLarge() error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("Request body too large: at most %d bytes.", maxBodyBytes))
}

// jsonProblem describes a json.Decoder error for a client.
func jsonProblem(err error) string {
	if syn, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("Malformed JSON at byte %d: %s.", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	}
	if typ, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typ.Field == "" {
			return fmt.Sprintf("Request body must be a JSON object, not %s.", article(typ.Value))
		}
		return fmt.Sprintf("Field %q must be %s, not %s.", typ.Field, jsonKind(typ.Type), article(typ.Value))
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "Malformed JSON: unexpected end of input."
	case errors.Is(err, io.EOF):
		return "Request body must be a JSON object."
	}
	// encoding/json has no typed error for unknown fields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("Unknown field %s.", name)
	}
	return "Malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ") + "."
}

// jsonKind names what a Go field type accepts in JSON.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a valid value"
}

// article turns the JSON value kind encoding/json reports ("string",
// "number 1.5") into a phrase.
func article(v string) string {
	switch {
	case v == "":
		return "this value"
	case strings.HasPrefix(v, "array"), strings.HasPrefix(v, "object"):
		return "an " + v
	}
	return "a " + v
}
