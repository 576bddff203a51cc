package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-dev/custos/domain/text"
)

// Rule kinds, stable wire values.
const (
	// KindDenialSpike: DENY decisions over a sliding window, per group
	// (role, agent, source or denial type), reach a threshold.
	KindDenialSpike = "denial_spike"
	// KindDenialRate: the DENY share of the decisions over a sliding
	// window, per group, reaches a threshold in percent, once the window
	// holds at least MinDecisions decisions.
	KindDenialRate = "denial_rate"
	// KindKeyExpiring: an active key expires within one of the rule's
	// day counts. One alert per key and day count, ever.
	KindKeyExpiring = "key_expiring"
	// KindInvalidKey: a revoked, expired or unknown key is presented
	// repeatedly (403 invalid key), counted per key prefix or per remote
	// address over a window.
	KindInvalidKey = "invalid_key"
	// KindVerifyFailed: the server's own check of its chain failed.
	KindVerifyFailed = "verify_failed"
	// KindStoreFailed: the log failed closed (a failed write or fsync).
	// Such an alert cannot be recorded on the failed chain; it is only
	// delivered.
	KindStoreFailed = "store_failed"
)

// Kinds returns every rule kind, in a fixed order.
func Kinds() []string {
	return []string{KindDenialSpike, KindDenialRate, KindKeyExpiring, KindInvalidKey, KindVerifyFailed, KindStoreFailed}
}

// Groupings of a denial_spike rule (Rule.GroupBy).
const (
	GroupRole       = "role"
	GroupAgent      = "agent"
	GroupSource     = "source"
	GroupDenialType = "denial_type"
)

// Groupings of an invalid_key rule (Rule.GroupBy).
const (
	GroupKeyPrefix  = "key_prefix"
	GroupRemoteAddr = "remote_addr"
)

// Limits of a rule.
const (
	// MaxWindow is the longest sliding window.
	MaxWindow = 7 * 24 * time.Hour
	// MinWindow is the shortest sliding window.
	MinWindow = time.Second
	// MaxDays is the largest day count of a key_expiring rule.
	MaxDays = 365
	// maxDayCounts bounds Rule.Days.
	maxDayCounts = 16
)

// Duration is a time.Duration written as Go duration text ("5m", "1h30m")
// in JSON and YAML.
type Duration time.Duration

// MarshalJSON writes d as a string such as "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads duration text ("5m") or, for robustness, a number of
// nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("alerts: duration must be text such as \"5m\"")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("alerts: duration %q: use Go duration text such as \"5m\" or \"1h\"", s)
	}
	*d = Duration(v)
	return nil
}

// Rule is one alert rule. Which fields apply depends on Kind:
//
//   - denial_spike: GroupBy (role, agent, source, denial_type), Threshold,
//     Window; DenialType optionally counts only denials of one type.
//   - denial_rate: GroupBy (role, agent, source), Threshold (a percent, 1 to
//     100: DENYs among the group's decisions in the window), Window,
//     MinDecisions (at least 1: fewer decisions in the window never fire);
//     DenialType optionally counts only denials of one type as DENYs.
//   - invalid_key: GroupBy (key_prefix, remote_addr), Threshold, Window.
//   - key_expiring: Days, e.g. [14, 1].
//   - verify_failed, store_failed: nothing else.
type Rule struct {
	RuleID      string   `json:"rule_id"`
	Kind        string   `json:"kind"`
	Description string   `json:"description,omitempty"`
	GroupBy     string   `json:"group_by,omitempty"`
	Threshold   int      `json:"threshold,omitempty"`
	Window      Duration `json:"window,omitempty"`
	DenialType  string   `json:"denial_type,omitempty"`
	// MinDecisions is the least decisions in the window of a denial_rate
	// rule before its share counts.
	MinDecisions int   `json:"min_decisions,omitempty"`
	Days         []int `json:"days,omitempty"`
}

// FieldError reports a rule field that breaks a rule (HTTP 422). Field is
// the wire name ("rule_id", "kind", "group_by", "threshold", "window",
// "denial_type", "min_decisions", "days", "days[i]", "description"); Problem says what is
// allowed. Validate reports every problem at once, joined with errors.Join.
type FieldError struct {
	Field   string
	Problem string
	// Err is the cause, or nil: a *text.Error for a refused character.
	Err error
}

func (e *FieldError) Error() string { return "alerts: invalid " + e.Field + ": " + e.Problem }

// Unwrap returns the cause, or nil.
func (e *FieldError) Unwrap() error { return e.Err }

// ErrInvalidRule is matched by every error of Rule.Validate.
var ErrInvalidRule = errors.New("alerts: invalid rule")

// maxRuleIDLength bounds a rule id.
const maxRuleIDLength = 64

// Validate reports every problem of r at once: each is a *FieldError, and
// the joined error matches ErrInvalidRule.
func (r Rule) Validate() error {
	var errs []error
	bad := func(field, problem string, cause error) {
		errs = append(errs, &FieldError{Field: field, Problem: problem, Err: cause})
	}
	switch {
	case r.RuleID == "":
		bad("rule_id", "is required", nil)
	case len(r.RuleID) > maxRuleIDLength:
		bad("rule_id", "must be at most "+strconv.Itoa(maxRuleIDLength)+" bytes", nil)
	case !validRuleID(r.RuleID):
		bad("rule_id", "must start with a letter or digit and hold only A-Z a-z 0-9 . _ -", nil)
	}
	if err := text.FreeText(r.Description); err != nil {
		bad("description", text.Problem(err), err)
	}
	windowed := func(groups ...string) {
		if !slices.Contains(groups, r.GroupBy) {
			bad("group_by", "must be one of "+strings.Join(groups, ", "), nil)
		}
		if r.Threshold < 1 {
			bad("threshold", "must be at least 1", nil)
		}
		if w := time.Duration(r.Window); w < MinWindow || w > MaxWindow {
			bad("window", fmt.Sprintf("must be between %s and %s", MinWindow, MaxWindow), nil)
		}
	}
	none := func(fields ...string) {
		for _, f := range fields {
			var set bool
			switch f {
			case "group_by":
				set = r.GroupBy != ""
			case "threshold":
				set = r.Threshold != 0
			case "window":
				set = r.Window != 0
			case "denial_type":
				set = r.DenialType != ""
			case "min_decisions":
				set = r.MinDecisions != 0
			case "days":
				set = r.Days != nil
			}
			if set {
				bad(f, "does not apply to kind "+r.Kind, nil)
			}
		}
	}
	switch r.Kind {
	case KindDenialSpike, KindDenialRate:
		if r.Kind == KindDenialSpike {
			windowed(GroupRole, GroupAgent, GroupSource, GroupDenialType)
		} else {
			// An ALLOW has no denial type: a share per denial type has no
			// decisions to divide by. denial_type filters instead.
			windowed(GroupRole, GroupAgent, GroupSource)
		}
		if err := text.Identifier(r.DenialType); r.DenialType != "" && err != nil {
			bad("denial_type", text.Problem(err), err)
		}
		if r.Kind == KindDenialSpike {
			none("min_decisions", "days")
			break
		}
		if r.Threshold > 100 {
			bad("threshold", "is a percent of the decisions: at most 100", nil)
		}
		if r.MinDecisions < 1 {
			bad("min_decisions", "must be at least 1: the decisions a window must hold before its DENY share counts", nil)
		}
		none("days")
	case KindInvalidKey:
		windowed(GroupKeyPrefix, GroupRemoteAddr)
		none("denial_type", "min_decisions", "days")
	case KindKeyExpiring:
		switch {
		case len(r.Days) == 0:
			bad("days", "must list at least one day count, e.g. [14, 1]", nil)
		case len(r.Days) > maxDayCounts:
			bad("days", "must list at most "+strconv.Itoa(maxDayCounts)+" day counts", nil)
		}
		seen := map[int]bool{}
		for i, d := range r.Days {
			field := "days[" + strconv.Itoa(i) + "]"
			switch {
			case d < 1 || d > MaxDays:
				bad(field, "must be between 1 and "+strconv.Itoa(MaxDays), nil)
			case seen[d]:
				bad(field, "repeats "+strconv.Itoa(d), nil)
			}
			seen[d] = true
		}
		none("group_by", "threshold", "window", "denial_type", "min_decisions")
	case KindVerifyFailed, KindStoreFailed:
		none("group_by", "threshold", "window", "denial_type", "min_decisions", "days")
	case "":
		bad("kind", "is required: one of "+strings.Join(Kinds(), ", "), nil)
	default:
		bad("kind", "must be one of "+strings.Join(Kinds(), ", "), nil)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidRule, errors.Join(errs...))
}

// clone returns a copy of r that shares nothing with it.
func (r Rule) clone() Rule {
	r.Days = slices.Clone(r.Days)
	return r
}

// Equal reports whether r and o are the same rule.
func (r Rule) Equal(o Rule) bool {
	return r.RuleID == o.RuleID && r.Kind == o.Kind && r.Description == o.Description &&
		r.GroupBy == o.GroupBy && r.Threshold == o.Threshold && r.Window == o.Window &&
		r.DenialType == o.DenialType && r.MinDecisions == o.MinDecisions && slices.Equal(r.Days, o.Days)
}

// validRuleID reports whether id is a letter or digit followed by letters,
// digits, '.', '_' and '-': safe in a URL path and a log line as it is.
func validRuleID(id string) bool {
	for i := 0; i < len(id); i++ {
		b := id[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if !alnum && (i == 0 || b != '.' && b != '_' && b != '-') {
			return false
		}
	}
	return id != ""
}
