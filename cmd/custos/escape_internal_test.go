package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"crm", "crm"},
		{"Kredit Prüfung 審査 🙂", "Kredit Prüfung 審査 🙂"},
		{"crm\x1b[31mRED\x1b[0m", `crm\x1b[31mRED\x1b[0m`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"\x00\x07\x7f", `\x00\x07\x7f`},
		{"a\u009b31m", `a\u009b31m`},
		{"txt\u202Egpj.exe", `txt\u202egpj.exe`},
		{"a\u2066b\u2069", `a\u2066b\u2069`},
		{"adm\u200Bin\uFEFF", `adm\u200bin\ufeff`},
		{"a\u200E\u200F", `a\u200e\u200f`},
		{"a\U000E0041", `a\U000e0041`},
		{"a\xffb\xc3", `a\xffb\xc3`},
		{`C:\x1b`, `C:\\x1b`},
		{"a\u2028b", `a\u2028b`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, escape(tt.in), "%q", tt.in)
		assert.Equal(t, tt.in != tt.want, needsEscape(tt.in), "%q", tt.in)
	}
}
