package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// errBadGlob is the cause of an invalid permitted_agent_ids pattern.
var errBadGlob = errors.New("invalid glob pattern")

// glob is a compiled shell pattern with the semantics of Python's
// fnmatch.fnmatchcase (which AutoPIL uses on POSIX):
//
//   - '*' matches any run of characters, including '/' and the empty run;
//   - '?' matches exactly one character (a Unicode code point);
//   - '[seq]' matches one character in seq, '[!seq]' one not in seq; a ']'
//     right after '[' or '[!' is literal; 'a-z' is a range; a '-' first or
//     last is literal; '^' is literal (unlike path.Match);
//   - every other character, including '\', matches itself (no escapes);
//   - matching is case-sensitive.
//
// Where fnmatch would silently read a malformed pattern as literal text, we
// reject it instead ([parseGlob]): an unclosed '[' and a reversed range such
// as '[z-a]' (which fnmatch reads as matching nothing).
type glob []globTok

type globKind uint8

const (
	tokLiteral globKind = iota
	tokAny              // '?'
	tokStar             // '*'
	tokClass            // '[...]'
)

type globTok struct {
	kind   globKind
	negate bool
	r      rune        // tokLiteral
	ranges []runeRange // tokClass
}

type runeRange struct{ lo, hi rune }

// isGlob reports whether s contains glob metacharacters; other entries are
// exact ids.
func isGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// parseGlob compiles pattern; the error wraps errBadGlob.
func parseGlob(pattern string) (glob, error) {
	var g glob
	for i := 0; i < len(pattern); {
		r, size := utf8.DecodeRuneInString(pattern[i:])
		switch r {
		case '*':
			i += size
			if len(g) > 0 && g[len(g)-1].kind == tokStar {
				continue // '**' is '*'
			}
			g = append(g, globTok{kind: tokStar})
			continue
		case '?':
			g = append(g, globTok{kind: tokAny})
			i += size
			continue
		case '[':
			tok, n, err := parseClass(pattern[i+size:])
			if err != nil {
				return nil, fmt.Errorf("%w: %v at byte %d", errBadGlob, err, i)
			}
			g = append(g, tok)
			i += size + n
			continue
		}
		g = append(g, globTok{kind: tokLiteral, r: r})
		i += size
	}
	return g, nil
}

// parseClass parses the body of a bracket expression (s starts after '[')
// and returns the token and the bytes consumed including the closing ']'.
func parseClass(s string) (globTok, int, error) {
	tok := globTok{kind: tokClass}
	i := 0
	if strings.HasPrefix(s, "!") {
		tok.negate = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return globTok{}, 0, errors.New("unclosed '['")
		}
		lo, size := utf8.DecodeRuneInString(s[i:])
		if lo == ']' && !first {
			return tok, i + size, nil
		}
		first = false
		i += size
		hi := lo
		// A range needs a '-' followed by a character other than the
		// closing ']'.
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			r, n := utf8.DecodeRuneInString(s[i+1:])
			hi = r
			i += 1 + n
			if hi < lo {
				return globTok{}, 0, fmt.Errorf("reversed range '%c-%c'", lo, hi)
			}
		}
		tok.ranges = append(tok.ranges, runeRange{lo, hi})
	}
}

func (t *globTok) matches(r rune) bool {
	switch t.kind {
	case tokLiteral:
		return r == t.r
	case tokAny:
		return true
	case tokClass:
		in := false
		for _, rg := range t.ranges {
			if rg.lo <= r && r <= rg.hi {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

// match reports whether s matches g in full. It does not allocate; it
// backtracks only to the last '*', which is enough for globs whose other
// tokens each match exactly one character.
func (g glob) match(s string) bool {
	pi, si := 0, 0
	starPi, starSi := -1, 0
	for si < len(s) {
		if pi < len(g) {
			t := &g[pi]
			if t.kind == tokStar {
				starPi, starSi = pi, si
				pi++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[si:])
			if t.matches(r) {
				pi++
				si += size
				continue
			}
		}
		if starPi < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry.
		_, size := utf8.DecodeRuneInString(s[starSi:])
		starSi += size
		si = starSi
		pi = starPi + 1
	}
	for pi < len(g) && g[pi].kind == tokStar {
		pi++
	}
	return pi == len(g)
}
