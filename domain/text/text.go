// Package text is the one rule for the characters a string may carry into
// custos. There are two kinds of strings:
//
//   - Identifiers: every id, name, role, source, task, claim, owner, label
//     and glob (the evaluate fields agent_role, agent_id, user_id,
//     source_id, session_id, task_type and principal_claims; key names;
//     policy names, roles, sources, tasks and agent id globs; agent ids,
//     roles, names, owners and frameworks; path and query parameters).
//     [Identifier] refuses invalid UTF-8, control characters (C0
//     U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F), bidirectional controls
//     (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), zero-width
//     characters (U+200B-U+200D, U+2060, U+FEFF), the line and paragraph
//     separators U+2028 and U+2029, and every other invisible format
//     character (Unicode category Cf, such as U+00AD or the tag characters).
//   - Free text: the evaluate query and descriptions. [FreeText] refuses
//     invalid UTF-8 and control characters other than tab, line feed and
//     carriage return. Bidirectional marks and zero-width joiners are part
//     of written Hebrew, Arabic, Indic scripts and emoji, so free text keeps
//     them; the CLI escapes them when it prints.
//
// Identifiers are compared byte for byte, so a character that does not show
// on a screen would let two different ids look the same in an audit trail,
// or let one rewrite the terminal of the auditor reading it. The package is
// pure: no I/O, standard library only. Validators in the domain packages
// call it and carry its *Error as the cause of their field errors, so every
// way in (HTTP, policy files) applies the same rule.
package text

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrRefused is matched (with [errors.Is]) by every [*Error].
var ErrRefused = errors.New("text: refused character")

// Class names why a character is refused. Its values appear in problems
// shown to clients.
type Class string

// The classes of refused characters.
const (
	ClassInvalidUTF8 Class = "invalid UTF-8"
	ClassControl     Class = "control characters"
	ClassBidi        Class = "bidirectional controls"
	ClassZeroWidth   Class = "zero-width characters"
	ClassSeparator   Class = "line or paragraph separators"
	ClassFormat      Class = "invisible format characters"
)

// Error reports the first refused character of a string.
type Error struct {
	// Class says why the character is refused.
	Class Class
	// Offset is the character's byte offset in the string.
	Offset int
	// Rune is the character; for ClassInvalidUTF8 it is the offending byte.
	Rune rune
}

// Problem says what is wrong, as a phrase that follows a field name:
// "must not contain control characters (U+001B at byte 3)".
func (e *Error) Problem() string {
	if e.Class == ClassInvalidUTF8 {
		return fmt.Sprintf("must be valid UTF-8 (byte 0x%02X at byte %d)", e.Rune, e.Offset)
	}
	return fmt.Sprintf("must not contain %s (U+%04X at byte %d)", e.Class, e.Rune, e.Offset)
}

// Error returns "text: " and the problem.
func (e *Error) Error() string { return "text: " + e.Problem() }

// Is reports whether target is [ErrRefused].
func (e *Error) Is(target error) bool { return target == ErrRefused }

// Identifier returns nil when s may be an identifier (see the package doc),
// else an *Error naming its first refused character. The empty string
// passes: whether a field is required is its validator's rule.
func Identifier(s string) error { return check(s, false) }

// FreeText returns nil when s may be free text (see the package doc), else
// an *Error naming its first refused character.
func FreeText(s string) error { return check(s, true) }

func check(s string, free bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 || c == 0x7f) && !(free && (c == '\t' || c == '\n' || c == '\r')) {
				return &Error{Class: ClassControl, Offset: i, Rune: rune(c)}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return &Error{Class: ClassInvalidUTF8, Offset: i, Rune: rune(c)}
		}
		if class := Classify(r); class != "" && (!free || class == ClassControl) {
			return &Error{Class: class, Offset: i, Rune: r}
		}
		i += n
	}
	return nil
}

// Classify returns the class of r when an identifier may not hold it, or ""
// when it may. It never returns ClassInvalidUTF8; utf8.RuneError itself (a
// valid character, U+FFFD) passes. The CLI escapes exactly these characters
// when it prints.
func Classify(r rune) Class {
	switch {
	case r < 0x20, r == 0x7f, 0x80 <= r && r <= 0x9f:
		return ClassControl
	case r < 0xad:
		return ""
	case r == 0x061c, r == 0x200e, r == 0x200f, 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return ClassBidi
	case 0x200b <= r && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return ClassZeroWidth
	case r == 0x2028, r == 0x2029:
		return ClassSeparator
	case unicode.Is(unicode.Cf, r):
		return ClassFormat
	}
	return ""
}

// Problem returns the problem phrase of the *Error in err (see
// [Error.Problem]), for validators that attach it to a field, or err's own
// message when it holds none.
func Problem(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Problem()
	}
	return err.Error()
}
