package wire

import (
	"encoding/json"
	"time"

	"github.com/custos-dev/custos/domain/alerts"
)

// Alert is one alert.raised record as GET /v1/alerts lists it: what the
// operator was told, with the record's seq and event id. window_start and
// window_end are absent for alerts without a window; figures is an object,
// never null.
type Alert struct {
	Seq         uint64           `json:"seq"`
	EventID     string           `json:"event_id"`
	AlertID     string           `json:"alert_id"`
	RuleID      string           `json:"rule_id"`
	Kind        string           `json:"kind"`
	Subject     string           `json:"subject"`
	WindowStart *time.Time       `json:"window_start,omitempty"`
	WindowEnd   *time.Time       `json:"window_end,omitempty"`
	Figures     map[string]int64 `json:"figures"`
	Detail      string           `json:"detail"`
	RaisedAt    time.Time        `json:"raised_at"`
}

// AlertList answers GET /v1/alerts: alerts in log order; next_after_seq is
// the after_seq of the next page, null on the last one.
type AlertList struct {
	Alerts       []Alert `json:"alerts"`
	NextAfterSeq *uint64 `json:"next_after_seq"`
}

// AlertRule is the body of POST /v1/alerts/rules and one rule of its
// answers (docs/alerts.md lists the kinds and which fields each takes).
// window is a Go duration ("5m", answered as "5m0s").
type AlertRule struct {
	RuleID      string          `json:"rule_id"`
	Kind        string          `json:"kind"`
	Description string          `json:"description,omitempty"`
	GroupBy     string          `json:"group_by,omitempty"`
	Threshold   int             `json:"threshold,omitempty"`
	Window      alerts.Duration `json:"window,omitempty"`
	DenialType  string          `json:"denial_type,omitempty"`
	// MinDecisions: denial_rate only.
	MinDecisions int   `json:"min_decisions,omitempty"`
	Days         []int `json:"days,omitempty"`
}

// AlertRules answers GET /v1/alerts/rules: every rule in force, by rule_id.
type AlertRules struct {
	Rules []AlertRule `json:"rules"`
}

// DeadLetter is an alert no webhook took after every retry: where it was
// going, how often it was tried, the last error and the body it carried.
type DeadLetter struct {
	AlertID   string          `json:"alert_id"`
	URL       string          `json:"url"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	FailedAt  time.Time       `json:"failed_at"`
	Body      json.RawMessage `json:"body"`
}

// DeadLetters answers GET /v1/alerts/dead-letters.
type DeadLetters struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}
