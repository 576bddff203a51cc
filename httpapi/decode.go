package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxBodyBytes is the largest request body accepted (64 KiB); larger ones
// get 413.
const maxBodyBytes = 64 << 10

// decodeJSON reads the request body into dst, strictly: the body must be one
// JSON object of dst's fields (exact names, each at most once) and nothing
// after it, sent as application/json. An empty body leaves dst as it is (every field absent).
// Errors are *echo.HTTPError: 413 too large, 415 not JSON, 400 anything
// malformed, with a detail that names the problem and the field.
func decodeJSON(c echo.Context, dst any) error {
	req := c.Request()
	if req.ContentLength > maxBodyBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		return echo.NewHTTPError(http.StatusBadRequest, "Could not read the request body.")
	}
	if len(body) == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return echo.NewHTTPError(http.StatusBadRequest, "Malformed JSON: unexpected data after the JSON object.")
	}
	if problem := checkFieldNames(body, dst); problem != "" {
		return echo.NewHTTPError(http.StatusBadRequest, problem)
	}
	return nil
}

// checkFieldNames closes two gaps encoding/json leaves open: it matches
// field names case-insensitively ("NAME" sets name) and lets a repeated field
// silently win. body must already have decoded into dst. It returns a detail,
// or "" when every top-level name is an exact json tag of dst and none
// repeats.
func checkFieldNames(body []byte, dst any) string {
	allowed := jsonFieldNames(reflect.TypeOf(dst))
	if allowed == nil {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "" // null: nothing set
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "Malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ") + "."
		}
		name, _ := tok.(string)
		switch {
		case !allowed[name]:
			return fmt.Sprintf("Unknown field %q.", name)
		case seen[name]:
			return fmt.Sprintf("Field %q is given more than once.", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "Malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ") + "."
		}
	}
	return ""
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
