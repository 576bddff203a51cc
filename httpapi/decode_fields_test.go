package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

type fieldCheckDTO struct {
	Name   string            `json:"name"`
	Scope  string            `json:"scope,omitempty"`
	Tags   []string          `json:"tags"`
	Meta   map[string]string `json:"meta"`
	Plain  int
	Hidden string `json:"-"`
}

var fieldCheckBodies = []string{
	`{}`, ` { } `, `null`, `{"name":"a"}`, `{"name":"a","scope":"read"}`,
	`{"name":"a","name":"b"}`, `{"NAME":"a"}`, `{"Name":"a"}`, `{"other":1}`, `{"Plain":1}`, `{"plain":1}`,
	`{"Hidden":"x"}`, `{"-":"x"}`,
	`{"n\u0061me":"a"}`, `{"n\u0061me":"a","name":"b"}`, `{"na\"me":"a"}`, `{"name":"a\"b\\","scope":"}{]["}`,
	`{"tags":["a",{"x":[1,2,{"y":"}"}]}],"meta":{"k":"v","name":"n"},"name":null}`,
	"{\n\t\"name\" :\r\n \"a\" ,\n\"scope\": \"s\"\n}\n",
	`{"name":1.5e3,"scope":true,"tags":null,"meta":{}}`,
	`{"name":"a","tags":[],"tags":[]}`, `{"nàme":"a"}`, "{\"n\xffme\":1}", `{"\u00e9":1}`,
	`{"name":"é","scope":"\ud83d\ude00"}`,
}

// TestCheckFieldNamesSinglePass checks the single-pass name check against
// encoding/json's tokenizer on bodies that decode.
func TestCheckFieldNamesSinglePass(t *testing.T) {
	allowed := jsonFieldNames(reflect.TypeOf(&fieldCheckDTO{}))
	for _, body := range fieldCheckBodies {
		if !json.Valid([]byte(body)) {
			continue
		}
		got := checkFieldNames([]byte(body), allowed)
		want := tokenizerFieldNames([]byte(body), allowed)
		if got != want {
			t.Errorf("%s: got %q, want %q", body, got, want)
		}
	}
	if jsonFieldNames(reflect.TypeOf(map[string]any{})) != nil || checkFieldNames([]byte(`{"x":1,"x":2}`), nil) != "" {
		t.Error("a map destination is not checked by name")
	}
}

func FuzzCheckFieldNames(f *testing.F) {
	for _, body := range fieldCheckBodies {
		f.Add(body)
	}
	allowed := jsonFieldNames(reflect.TypeOf(&fieldCheckDTO{}))
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		got := checkFieldNames([]byte(body), allowed)
		want := tokenizerFieldNames([]byte(body), allowed)
		if got != want {
			t.Errorf("%q: got %q, want %q", body, got, want)
		}
	})
}

// tokenizerFieldNames is checkFieldNames written with encoding/json's
// tokenizer: the reference the single pass is checked against.
func tokenizerFieldNames(body []byte, allowed map[string]bool) string {
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
