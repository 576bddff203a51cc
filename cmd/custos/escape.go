package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/custos-dev/custos/domain/text"
)

// escape makes a string from the server safe to print in a terminal: every
// character text.Classify names (C0 and C1 controls, DEL, bidi controls,
// zero-width and other invisible characters), every byte that is not
// UTF-8, and the backslash are written as Go escapes (\t, \n, \r, \\,
// \x1b, \u202e, \xff), so an ESC sequence in a source_id shows as text
// instead of recolouring or rewriting the auditor's screen, and a
// backslash in the value cannot pass for an escape. Every table and
// name: value line the CLI prints goes through here (table.row), as do
// the server's error details; JSON output (-o json) is exact JSON, which
// escapes controls itself.
func escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case text.Classify(r) == "":
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether escape would change s; most strings print
// as they are, without a copy.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || text.Classify(r) != "" {
			return true
		}
		i += n
	}
	return false
}
