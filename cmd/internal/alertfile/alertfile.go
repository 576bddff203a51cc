// Package alertfile loads an alerts file: the alert rules and webhooks of
// `custos serve --alerts PATH`, checked by `custos alerts validate PATH`.
// It does file I/O and YAML decoding only; what a valid rule is, is
// decided by domain/alerts (alerts.Rule.Validate).
//
// # Format
//
//	rules:
//	  - rule_id: deny-spike
//	    kind: denial_spike        # denial_spike, denial_rate, key_expiring, invalid_key, verify_failed, store_failed
//	    group_by: role            # role, agent, source, denial_type | key_prefix, remote_addr
//	    threshold: 50
//	    window: 5m                # Go duration text
//	  - rule_id: expiry
//	    kind: key_expiring
//	    days: [14, 1]
//	webhooks:
//	  - url: https://hooks.example.com/custos
//	    secret_env: CUSTOS_ALERTS_SECRET   # the signing secret is read from this variable
//
// Decoding is strict (an unknown key, a value of the wrong type or a key
// given twice is a problem), and Load reports every problem at once,
// joined with errors.Join, each a *Problem reading "file:line: field:
// problem". Secrets never sit in the file: a webhook names the environment
// variable that holds its secret.
package alertfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/custos-dev/custos/cmd/internal/fileproblem"
	"github.com/custos-dev/custos/domain/alerts"
)

// ErrMalformed is matched by every problem of YAML syntax, type, unknown
// or repeated keys, or duplicate rule ids.
var ErrMalformed = errors.New("alertfile: malformed alerts file")

// Problem is one problem in an alerts file (fileproblem.Problem); its Err
// matches ErrMalformed for a problem of the file's shape.
type Problem = fileproblem.Problem

// Webhook is one receiver of the file.
type Webhook struct {
	URL string
	// SecretEnv names the environment variable holding the signing secret;
	// empty sends unsigned requests.
	SecretEnv string
}

// File is a loaded alerts file.
type File struct {
	Rules    []alerts.Rule
	Webhooks []Webhook
}

type ruleDoc struct {
	RuleID       string `yaml:"rule_id"`
	Kind         string `yaml:"kind"`
	Description  string `yaml:"description"`
	GroupBy      string `yaml:"group_by"`
	Threshold    int    `yaml:"threshold"`
	Window       string `yaml:"window"`
	DenialType   string `yaml:"denial_type"`
	MinDecisions int    `yaml:"min_decisions"`
	Days         []int  `yaml:"days"`
}

type webhookDoc struct {
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
}

type fileDoc struct {
	Rules    []ruleDoc    `yaml:"rules"`
	Webhooks []webhookDoc `yaml:"webhooks"`
}

// Load reads and checks the alerts file at path.
func Load(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("alertfile: %w", err)
	}
	return Parse(path, data)
}

var reLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func splitLine(s string) (int, string) {
	if m := reLine.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

// Parse checks data, read from the file name, and returns its rules and
// webhooks, or every problem.
func Parse(name string, data []byte) (File, error) {
	var problems []error
	add := func(line int, field, msg string, err error) {
		problems = append(problems, &Problem{File: name, Line: line, Field: field, Message: msg, Err: err})
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line, msg := splitLine(err.Error())
		add(line, "", msg, ErrMalformed)
		return File{}, errors.Join(problems...)
	}
	if len(root.Content) == 0 {
		add(0, "", "empty file: want a mapping with a rules list", ErrMalformed)
		return File{}, errors.Join(problems...)
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var doc fileDoc
	if err := strict.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line, msg := splitLine(err.Error())
			add(line, "", msg, ErrMalformed)
			return File{}, errors.Join(problems...)
		}
		for _, m := range te.Errors {
			line, msg := splitLine(m)
			add(line, "", msg, ErrMalformed)
		}
		return File{}, errors.Join(problems...)
	}
	rulesNode, hooksNode := child(root.Content[0], "rules"), child(root.Content[0], "webhooks")

	var f File
	seen := map[string]int{}
	for i, d := range doc.Rules {
		item := at(rulesNode, i)
		prefix := "rules[" + strconv.Itoa(i) + "]."
		r := alerts.Rule{RuleID: d.RuleID, Kind: d.Kind, Description: d.Description, GroupBy: d.GroupBy,
			Threshold: d.Threshold, DenialType: d.DenialType, MinDecisions: d.MinDecisions, Days: d.Days}
		windowBad := false
		if d.Window != "" {
			w, err := time.ParseDuration(d.Window)
			if err != nil {
				add(lineOf(item, "window"), prefix+"window", fmt.Sprintf("%q is not a duration; write Go duration text such as 5m or 1h", d.Window), ErrMalformed)
				windowBad = true
			}
			r.Window = alerts.Duration(w)
		}
		var joined interface{ Unwrap() []error }
		if err := r.Validate(); errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				inner, ok := e.(interface{ Unwrap() []error })
				if !ok {
					continue
				}
				for _, fe := range inner.Unwrap() {
					var field *alerts.FieldError
					if !errors.As(fe, &field) || windowBad && field.Field == "window" {
						continue
					}
					key, _, _ := strings.Cut(field.Field, "[")
					add(lineOf(item, key), prefix+field.Field, field.Problem, field)
				}
			}
		}
		if first, dup := seen[r.RuleID]; dup && r.RuleID != "" {
			add(lineOf(item, "rule_id"), prefix+"rule_id", fmt.Sprintf("rule_id %q repeats rules[%d]", r.RuleID, first), ErrMalformed)
		}
		seen[r.RuleID] = i
		f.Rules = append(f.Rules, r)
	}
	for i, d := range doc.Webhooks {
		item := at(hooksNode, i)
		prefix := "webhooks[" + strconv.Itoa(i) + "]."
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(lineOf(item, "url"), prefix+"url", "must be an absolute http or https URL", ErrMalformed)
		}
		if d.SecretEnv != "" && !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(d.SecretEnv) {
			add(lineOf(item, "secret_env"), prefix+"secret_env", "must name an environment variable (letters, digits, _)", ErrMalformed)
		}
		f.Webhooks = append(f.Webhooks, Webhook{URL: d.URL, SecretEnv: d.SecretEnv})
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b error) int { return a.(*Problem).Line - b.(*Problem).Line })
		return File{}, errors.Join(problems...)
	}
	return f, nil
}

// child returns the value node of key in mapping m, or nil.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// at returns item i of sequence s, or nil.
func at(s *yaml.Node, i int) *yaml.Node {
	if s == nil || s.Kind != yaml.SequenceNode || i >= len(s.Content) {
		return nil
	}
	return s.Content[i]
}

// lineOf returns the line of key in mapping item, else the item's line.
func lineOf(item *yaml.Node, key string) int {
	if item == nil {
		return 0
	}
	if item.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == key {
				return item.Content[i].Line
			}
		}
	}
	return item.Line
}
