// Package fileproblem is the one shape of a problem found in a file the
// operator wrote (policy files, alerts files): where it is, what is wrong,
// and the error beneath, printed as "file:line: field: message" so that
// editors and CI logs can jump to it.
package fileproblem

import (
	"strconv"
	"strings"
)

// Problem is one problem in a file.
type Problem struct {
	// File is the path of the file, as the loader was given it.
	File string
	// Line is the 1-based line of the problem; 0 when unknown or for a
	// problem with the whole file.
	Line int
	// Field is the path of the field, e.g. "policies[1].task_bindings[0].task";
	// empty for a problem with the whole file.
	Field string
	// Message says what is wrong, e.g. "unknown field 'max_sensitivty' (did
	// you mean 'max_sensitivity'?)".
	Message string
	// Err is the underlying error; the loader's documentation lists what it
	// may be.
	Err error
}

// Error returns "file:line: field: message", leaving out the line and field
// when they are not known.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Unwrap returns Err.
func (p *Problem) Unwrap() error { return p.Err }
