package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/custos-dev/custos/httpapi/wire"
)

// AlertFilter selects the alerts ListAlerts returns; zero fields match
// everything. AfterSeq and Limit page through them.
type AlertFilter struct {
	RuleID   string
	Kind     string
	Since    time.Time
	AfterSeq uint64
	Limit    int
}

func (f AlertFilter) query() url.Values {
	q := url.Values{}
	if f.RuleID != "" {
		q.Set("rule_id", f.RuleID)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.AfterSeq > 0 {
		q.Set("after_seq", strconv.FormatUint(f.AfterSeq, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// ListAlerts returns one page of raised alerts (GET /v1/alerts; read).
func (c *Client) ListAlerts(ctx context.Context, f AlertFilter) (wire.AlertList, error) {
	var out wire.AlertList
	err := c.do(ctx, http.MethodGet, "/v1/alerts", f.query(), nil, &out)
	return out, err
}

// ListAlertRules returns the alert rules in force (GET /v1/alerts/rules;
// admin).
func (c *Client) ListAlertRules(ctx context.Context) (wire.AlertRules, error) {
	var out wire.AlertRules
	err := c.do(ctx, http.MethodGet, "/v1/alerts/rules", nil, nil, &out)
	return out, err
}

// SetAlertRule creates or replaces the rule with r's rule_id (POST
// /v1/alerts/rules; admin) and returns it as stored.
func (c *Client) SetAlertRule(ctx context.Context, r wire.AlertRule) (wire.AlertRule, error) {
	var out wire.AlertRule
	err := c.do(ctx, http.MethodPost, "/v1/alerts/rules", nil, r, &out)
	return out, err
}

// DeleteAlertRule deletes a rule (DELETE /v1/alerts/rules/{rule_id};
// admin); ErrNotFound when there is none.
func (c *Client) DeleteAlertRule(ctx context.Context, ruleID string) error {
	return c.do(ctx, http.MethodDelete, "/v1/alerts/rules/"+seg(ruleID), nil, nil, nil)
}

// ListDeadLetters returns the alerts no webhook took (GET
// /v1/alerts/dead-letters; admin).
func (c *Client) ListDeadLetters(ctx context.Context) (wire.DeadLetters, error) {
	var out wire.DeadLetters
	err := c.do(ctx, http.MethodGet, "/v1/alerts/dead-letters", nil, nil, &out)
	return out, err
}
