package text_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/text"
)

func TestIdentifierAndFreeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		identifier text.Class // "" passes
		free       text.Class
		offset     int
		r          rune
	}{
		{"empty", "", "", "", 0, 0},
		{"ascii id", "loan-agent_01:eu@bank.example", "", "", 0, 0},
		{"spaces and unicode", "Kredit Prüfung 審査 🙂", "", "", 0, 0},
		{"replacement character is a character", "a\uFFFDb", "", "", 0, 0},
		{"NUL", "a\x00", text.ClassControl, text.ClassControl, 1, 0},
		{"ESC sequence", "crm\x1b[31m", text.ClassControl, text.ClassControl, 3, 0x1b},
		{"unit separator", "a\x1fb", text.ClassControl, text.ClassControl, 1, 0x1f},
		{"DEL", "a\x7f", text.ClassControl, text.ClassControl, 1, 0x7f},
		{"C1 CSI", "a\u009b31m", text.ClassControl, text.ClassControl, 1, 0x9b},
		{"tab", "a\tb", text.ClassControl, "", 1, '\t'},
		{"line feed", "a\nb", text.ClassControl, "", 1, '\n'},
		{"carriage return", "a\rb", text.ClassControl, "", 1, '\r'},
		{"RLO", "txt\u202Egpj.exe", text.ClassBidi, "", 3, 0x202e},
		{"LRE", "\u202Aa", text.ClassBidi, "", 0, 0x202a},
		{"PDF", "a\u202C", text.ClassBidi, "", 1, 0x202c},
		{"LRI", "a\u2066b", text.ClassBidi, "", 1, 0x2066},
		{"PDI", "a\u2069", text.ClassBidi, "", 1, 0x2069},
		{"LRM", "a\u200Eb", text.ClassBidi, "", 1, 0x200e},
		{"RLM", "a\u200Fb", text.ClassBidi, "", 1, 0x200f},
		{"arabic letter mark", "a\u061Cb", text.ClassBidi, "", 1, 0x061c},
		{"zero-width space", "adm\u200Bin", text.ClassZeroWidth, "", 3, 0x200b},
		{"zero-width non-joiner", "a\u200Cb", text.ClassZeroWidth, "", 1, 0x200c},
		{"zero-width joiner", "a\u200Db", text.ClassZeroWidth, "", 1, 0x200d},
		{"word joiner", "a\u2060b", text.ClassZeroWidth, "", 1, 0x2060},
		{"byte order mark", "\uFEFFadmin", text.ClassZeroWidth, "", 0, 0xfeff},
		{"line separator", "a\u2028b", text.ClassSeparator, "", 1, 0x2028},
		{"paragraph separator", "a\u2029b", text.ClassSeparator, "", 1, 0x2029},
		{"soft hyphen", "ad\u00ADmin", text.ClassFormat, "", 2, 0xad},
		{"tag character", "a\U000E0041", text.ClassFormat, "", 1, 0xe0041},
		{"lone continuation byte", "ab\x80", text.ClassInvalidUTF8, text.ClassInvalidUTF8, 2, 0x80},
		{"truncated sequence", "\xc3", text.ClassInvalidUTF8, text.ClassInvalidUTF8, 0, 0xc3},
		{"overlong NUL", "a\xc0\x80", text.ClassInvalidUTF8, text.ClassInvalidUTF8, 1, 0xc0},
		{"encoded surrogate", "\xed\xa0\x80", text.ClassInvalidUTF8, text.ClassInvalidUTF8, 0, 0xed},
		{"0xFF", "\xff", text.ClassInvalidUTF8, text.ClassInvalidUTF8, 0, 0xff},
		{"first problem wins", "a\u200B\x00", text.ClassZeroWidth, text.ClassControl, 1, 0x200b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				kind  string
				check func(string) error
				want  text.Class
			}{{"identifier", text.Identifier, tt.identifier}, {"free text", text.FreeText, tt.free}} {
				err := c.check(tt.in)
				if c.want == "" {
					assert.NoError(t, err, c.kind)
					continue
				}
				require.Error(t, err, c.kind)
				assert.ErrorIs(t, err, text.ErrRefused)
				var te *text.Error
				require.True(t, errors.As(err, &te))
				assert.Equal(t, c.want, te.Class, c.kind)
				if c.kind == "identifier" { // free text may stop at a later character
					assert.Equal(t, tt.offset, te.Offset, c.kind)
					assert.Equal(t, tt.r, te.Rune, c.kind)
				}
			}
		})
	}
}

func TestProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"crm\x1b[31m", "must not contain control characters (U+001B at byte 3)"},
		{"a\u202E", "must not contain bidirectional controls (U+202E at byte 1)"},
		{"\u200B", "must not contain zero-width characters (U+200B at byte 0)"},
		{"ab\xff", "must be valid UTF-8 (byte 0xFF at byte 2)"},
	}
	for _, tt := range tests {
		err := text.Identifier(tt.in)
		var te *text.Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, tt.want, te.Problem())
		assert.Equal(t, "text: "+tt.want, err.Error())
	}
}

// FuzzIdentifier checks the rule against its definition: an identifier
// passes exactly when it is valid UTF-8 and Classify accepts every
// character; free text passes when it is valid UTF-8 and its only controls
// are tab, line feed and carriage return.
func FuzzIdentifier(f *testing.F) {
	for _, s := range []string{"", "loan-agent", "a\x1b[31m", "\u202E", "\xff", "a\tb\n", "\u0085", "\uFEFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		idOK, freeOK := utf8.ValidString(s), utf8.ValidString(s)
		for _, r := range s {
			if text.Classify(r) != "" {
				idOK = false
				if text.Classify(r) == text.ClassControl && r != '\t' && r != '\n' && r != '\r' {
					freeOK = false
				}
			}
		}
		assert.Equal(t, idOK, text.Identifier(s) == nil, "identifier %q", s)
		assert.Equal(t, freeOK, text.FreeText(s) == nil, "free text %q", s)
	})
}
