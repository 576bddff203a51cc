// Package policyfile loads AutoPIL-style YAML policy files: a single file or
// a folder of them. It does file I/O and YAML decoding only; what a valid
// policy is, is decided by the domain/policy package ([policy.Policy.Validate]).
//
// # Format
//
// A file is a mapping with descriptive metadata (industry, organization,
// division, process_group, regulations: [{id, name, applicable_rules: [{rule,
// how_enforced}]}]) and policies: a list of [policy.Policy] entries with the
// spec's snake_case field names. The policies key is required; an empty list
// is allowed. One YAML document per file.
//
// The file's metadata is copied into every policy that does not set the same
// field itself, field by field: a policy with its own industry keeps it and
// still inherits the file's division if it has none. A policy's regulations
// count as set when the key is present, even as an empty list; inherited
// regulations are deep copies, so no two policies share a slice.
//
// # Strictness and errors
//
// Decoding is strict: a key that is not a field (a typo, or the
// server-managed version, created_at and updated_at) is an error, as is a
// value of the wrong YAML type or a key given twice. Lists keep the
// difference between absent and empty (see the policy package). Load and
// Parse report every problem of every file at once, joined with
// [errors.Join]; each is a [*Problem] whose message reads
// "file:line: policies[i].field: problem" (line when known; field path when
// the problem has one). Semantic problems come from [policy.Policy.Validate];
// duplicate name or policy_id values across all loaded files are
// reported at the second occurrence and match [policy.ErrConflict] (several
// names for one agent_role are fine). Field
// problems match [policy.ErrInvalidPolicy]; unknown keys match
// [ErrUnknownField]; syntax and type errors match [ErrMalformed]. No
// policies are returned when there is any problem.
package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/custos-dev/custos/cmd/internal/fileproblem"
	"github.com/custos-dev/custos/domain/policy"
)

// ErrUnknownField is matched by every problem that reports a key which is
// not a field of the format.
var ErrUnknownField = errors.New("policyfile: unknown field")

// ErrMalformed is matched by every problem that reports invalid YAML, a value
// of the wrong type, a key given twice, or a file that is empty or holds
// more than one document.
var ErrMalformed = errors.New("policyfile: malformed policy file")

// Problem is one problem in a policy file (fileproblem.Problem). Its Err is
// a *policy.FieldError, a *policy.ConflictError, ErrUnknownField,
// ErrMalformed, or the error of reading the file.
type Problem = fileproblem.Problem

// Load reads the policies of path: a YAML policy file, or a folder whose
// *.yaml and *.yml files (not recursive; sorted by name; other files and
// subfolders ignored) are read in order. The policies are returned in file
// order, then list order. A folder without policy files is an error.
func Load(path string) ([]policy.Policy, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policyfile: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("policyfile: %w", err)
		}
		files = files[:0]
		for _, e := range entries { // sorted by name
			name := e.Name()
			if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
				continue
			}
			full := filepath.Join(path, name)
			if st, err := os.Stat(full); err != nil || st.IsDir() {
				continue // a dangling link or a folder named x.yaml
			}
			files = append(files, full)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("policyfile: %s: no *.yaml or *.yml files", path)
		}
	}
	var l loader
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.files = append(l.files, f)
			l.problems = append(l.problems, &Problem{File: f, Message: err.Error(), Err: err})
			continue
		}
		l.parse(f, data)
	}
	return l.result()
}

// Parse decodes the content of one policy file; name identifies it in
// problems. It applies the same rules as Load.
func Parse(name string, data []byte) ([]policy.Policy, error) {
	var l loader
	l.parse(name, data)
	return l.result()
}

// fileDoc is the top level of a policy file.
type fileDoc struct {
	Industry     string              `yaml:"industry"`
	Organization string              `yaml:"organization"`
	Division     string              `yaml:"division"`
	ProcessGroup string              `yaml:"process_group"`
	Regulations  []policy.Regulation `yaml:"regulations"`
	Policies     []policy.Policy     `yaml:"policies"`
}

// origin locates a loaded policy.
type origin struct {
	file  string
	index int
	lines map[string]int // field path -> line, for the whole file
}

func (o origin) field(f string) string { return "policies[" + strconv.Itoa(o.index) + "]." + f }

// loader collects policies and problems across files.
type loader struct {
	files    []string // in the order parsed
	policies []policy.Policy
	origins  []origin
	problems []*Problem
}

func (l *loader) result() ([]policy.Policy, error) {
	l.duplicates()
	if len(l.problems) > 0 {
		// By file (in load order), then by line.
		rank := make(map[string]int, len(l.files))
		for i, f := range l.files {
			if _, ok := rank[f]; !ok {
				rank[f] = i
			}
		}
		slices.SortStableFunc(l.problems, func(a, b *Problem) int {
			if c := rank[a.File] - rank[b.File]; c != 0 {
				return c
			}
			return a.Line - b.Line
		})
		errs := make([]error, len(l.problems))
		for i, p := range l.problems {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	if l.policies == nil {
		return []policy.Policy{}, nil
	}
	return l.policies, nil
}

var (
	reLine      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reUnknown   = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)
	reDuplicate = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	reType      = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into ")
)

// parse decodes one file and records its policies and problems.
func (l *loader) parse(file string, data []byte) {
	l.files = append(l.files, file)
	add := func(line int, field, msg string, err error) {
		l.problems = append(l.problems, &Problem{File: file, Line: line, Field: field, Message: msg, Err: err})
	}

	// Parse into nodes first, for syntax errors and for the line of every
	// field path.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			add(0, "", "empty file: want a mapping with a policies list", ErrMalformed)
			return
		}
		line, msg := splitLine(err.Error())
		add(line, "", msg, ErrMalformed)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line, _ := splitLine(fmt.Sprint(err))
		if err == nil {
			line = extra.Line
		}
		add(line, "", "more than one YAML document; put one policy file per document", ErrMalformed)
		return
	}
	entries := index(&root)
	lines := make(map[string]int, len(entries))
	for _, e := range entries {
		if _, ok := lines[e.path]; !ok {
			lines[e.path] = e.line()
		}
	}

	// Strict decode: every unknown key and type error, each with a line.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var (
		doc       fileDoc
		undecoded []string // fields with a type error: Validate's view of them is moot
	)
	if err := strict.Decode(&doc); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line, msg := splitLine(err.Error())
			add(line, "", msg, ErrMalformed)
			return
		}
		for _, m := range te.Errors {
			line, msg := splitLine(m)
			field, msg, kind := explain(entries, line, msg)
			add(line, field, msg, kind)
			if field != "" {
				undecoded = append(undecoded, field)
			}
		}
	}
	if _, ok := lines["policies"]; !ok && len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
		add(root.Content[0].Line, "policies", "required", &policy.FieldError{Field: "policies", Problem: "required"})
	}

	for i, p := range doc.Policies {
		inherit(&p, doc)
		o := origin{file: file, index: i, lines: lines}
		err := p.Validate()
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				var fe *policy.FieldError
				if !errors.As(e, &fe) {
					continue
				}
				f := o.field(fe.Field)
				if !slices.ContainsFunc(undecoded, func(u string) bool { return within(f, u) }) {
					add(lineOf(lines, f), f, fe.Problem, fe)
				}
			}
		}
		l.policies = append(l.policies, p)
		l.origins = append(l.origins, o)
	}
}

// inherit copies the file's metadata into p where p does not set its own.
func inherit(p *policy.Policy, doc fileDoc) {
	if p.Industry == "" {
		p.Industry = doc.Industry
	}
	if p.Organization == "" {
		p.Organization = doc.Organization
	}
	if p.Division == "" {
		p.Division = doc.Division
	}
	if p.ProcessGroup == "" {
		p.ProcessGroup = doc.ProcessGroup
	}
	if p.Regulations == nil && doc.Regulations != nil {
		p.Regulations = policy.Policy{Regulations: doc.Regulations}.Clone().Regulations
	}
}

// duplicates reports every name and non-empty policy_id used by more than
// one loaded policy, at the later one. Several policies may share an
// agent_role (agents pick theirs by policy_name).
func (l *loader) duplicates() {
	type key struct{ field, value string }
	first := make(map[key]int)
	for i, p := range l.policies {
		o := l.origins[i]
		for _, k := range []key{{"name", p.Name}, {"policy_id", p.PolicyID}} {
			if strings.TrimSpace(k.value) == "" {
				continue // required: reported by Validate; policy_id: generated later
			}
			j, seen := first[k]
			if !seen {
				first[k] = i
				continue
			}
			prev := l.origins[j]
			f := o.field(k.field)
			where := prev.file
			if line := lineOf(prev.lines, prev.field(k.field)); line > 0 {
				where += ":" + strconv.Itoa(line)
			}
			l.problems = append(l.problems, &Problem{
				File: o.file, Line: lineOf(o.lines, f), Field: f,
				Message: fmt.Sprintf("duplicate %s '%s' (also %s, %s)", k.field, k.value, where, prev.field(k.field)),
				Err: &policy.ConflictError{
					Field: k.field, Value: k.value,
					First:  prev.file + " " + prev.field(k.field),
					Second: o.file + " " + f,
				},
			})
		}
	}
}

// within reports whether path is parent or path itself or a field or item
// under it.
func within(path, parent string) bool {
	if !strings.HasPrefix(path, parent) {
		return false
	}
	rest := path[len(parent):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// splitLine splits "line N: msg" (optionally prefixed "yaml: ") into N and
// msg; without a line it returns 0 and s without the "yaml: " prefix.
func splitLine(s string) (int, string) {
	if m := reLine.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

// explain turns a yaml type error at line into a field path, a message and
// the error it matches.
func explain(entries []entry, line int, msg string) (string, string, error) {
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		name, typ := m[1], m[2]
		out := "unknown field '" + name + "'"
		switch {
		case typ == "policy.Policy" && (name == "version" || name == "created_at" || name == "updated_at"):
			out += " (managed by the server; policy files cannot set it)"
		default:
			if s := suggest(name, knownFields[typ]); s != "" {
				out += " (did you mean '" + s + "'?)"
			}
		}
		return findKey(entries, line, name), out, ErrUnknownField
	}
	if m := reDuplicate.FindStringSubmatch(msg); m != nil {
		return findKey(entries, line, m[1]), "key given twice (first at line " + m[2] + ")", ErrMalformed
	}
	if m := reType.FindStringSubmatch(msg); m != nil {
		if path, ok := findValue(entries, line, m[1], m[2]); ok {
			return path, msg, ErrMalformed
		}
	}
	return findKey(entries, line, ""), msg, ErrMalformed
}

// findValue returns the path of the deepest node at line of the YAML kind
// that tag names (!!seq, !!map, else a scalar, whose text must be value when
// value is not empty; yaml.v3 shortens long values to 7 characters and
// "...").
func findValue(entries []entry, line int, tag, value string) (string, bool) {
	want := yaml.ScalarNode
	switch tag {
	case "!!seq":
		want = yaml.SequenceNode
	case "!!map":
		want = yaml.MappingNode
	}
	path, found := "", false
	for _, e := range entries { // keep the last match: the deepest node
		v := e.value
		if v.Line == line && v.Kind == want && (want != yaml.ScalarNode || value == "" || v.Value == value ||
			strings.HasSuffix(value, "...") && strings.HasPrefix(v.Value, strings.TrimSuffix(value, "..."))) {
			path, found = e.path, true
		}
	}
	return path, found
}

// entry is one field of a file with its path.
type entry struct {
	path       string
	key, value *yaml.Node // key is nil for a sequence item
}

func (e entry) line() int {
	if e.key != nil {
		return e.key.Line
	}
	return e.value.Line
}

// index lists every field and list item of a document, parents first,
// starting with the top-level node (path "").
func index(doc *yaml.Node) []entry {
	out := []entry{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		out = append(out, entry{path: "", value: doc.Content[0]})
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				out = append(out, entry{path: p, key: k, value: v})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				out = append(out, entry{path: p, value: c})
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return out
}

// findKey returns the path of the field whose key named name (any key when
// name is empty) is at line, else of the first item at line, else "".
func findKey(entries []entry, line int, name string) string {
	for _, e := range entries {
		if e.key != nil && e.key.Line == line && (name == "" || e.key.Value == name) {
			return e.path
		}
	}
	for _, e := range entries {
		if e.value.Line == line {
			return e.path
		}
	}
	return ""
}

// lineOf returns the line of path, or of its nearest parent present in the
// file (a required field that is absent points at its policy), or 0.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if n, ok := lines[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// knownFields maps the Go type names that yaml.v3 prints in its errors
// ("policy.Policy") to the YAML keys of that type, for suggestions.
var knownFields = func() map[string][]string {
	out := make(map[string][]string)
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || out[t.String()] != nil {
			return
		}
		out[t.String()] = []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			out[t.String()] = append(out[t.String()], name)
			visit(f.Type)
		}
	}
	visit(reflect.TypeFor[fileDoc]())
	return out
}()

// suggest returns the known field closest to name if it is within a small
// edit distance, else "".
func suggest(name string, known []string) string {
	best, bestD := "", 3
	if len(name) <= 4 {
		bestD = 2
	}
	for _, k := range known {
		if d := distance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b (bytes).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
