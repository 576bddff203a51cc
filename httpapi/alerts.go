package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/alerting/webhook"
	"github.com/custos-dev/custos/projections/readside"
)

// AlertHooks connect the API to the alerts engine and its delivery. Every
// field is optional.
type AlertHooks struct {
	// InvalidKey is told of every request refused because its key is
	// unknown, revoked or expired (403): the key's display prefix (or
	// "malformed") and the client address. Such a key names no tenant, so
	// this is the deployment's (serve counts it on tenant default). It
	// runs on the request's goroutine and must not block or append
	// anything; the refused request itself appends nothing.
	InvalidKey func(prefix, remoteAddr string)
	// DeadLetters lists the alerts of tenant no webhook took, for GET
	// /v1/alerts/dead-letters. Nil answers an empty list. Called
	// concurrently.
	DeadLetters func(tenant string) []webhook.DeadLetter
}

// Query limits of GET /v1/alerts.
const (
	defaultAlertsLimit = 100
	maxAlertsLimit     = 1000
)

// listAlerts handles GET /v1/alerts: alert.raised records from the audit
// index, filtered by rule_id, kind and since, paged by seq.
func (s *Server) listAlerts(c echo.Context) error {
	if err := onlyQueryParams(c, "rule_id", "kind", "since", "after_seq", "limit"); err != nil {
		return err
	}
	f := readside.AlertFilter{RuleID: c.QueryParam("rule_id"), Kind: c.QueryParam("kind")}
	if raw := c.QueryParam("since"); raw != "" {
		var err error
		if f.Since, err = parseTimeParam("since", raw); err != nil {
			return err
		}
	}
	after, err := uintParam(c, "after_seq", 0, 0, 1<<63)
	if err != nil {
		return err
	}
	limit, err := uintParam(c, "limit", defaultAlertsLimit, 1, maxAlertsLimit)
	if err != nil {
		return err
	}
	resp := wire.AlertList{Alerts: []wire.Alert{}}
	last, more, err := tenantOf(c).Index.Alerts(c.Request().Context(), f, after, int(limit), func(r readside.AlertRecord) error {
		a := r.Alert
		figures := a.Figures
		if figures == nil {
			figures = map[string]int64{}
		}
		resp.Alerts = append(resp.Alerts, wire.Alert{
			Seq: r.Seq, EventID: r.EventID, AlertID: a.AlertID, RuleID: a.RuleID, Kind: a.Kind, Subject: a.Subject,
			WindowStart: a.WindowStart, WindowEnd: a.WindowEnd, Figures: figures, Detail: a.Detail, RaisedAt: a.RaisedAt,
		})
		return nil
	})
	if err != nil {
		return err
	}
	if more {
		resp.NextAfterSeq = &last
	}
	return c.JSON(http.StatusOK, resp)
}

func alertRuleDomain(r wire.AlertRule) alerts.Rule {
	return alerts.Rule{RuleID: r.RuleID, Kind: r.Kind, Description: r.Description, GroupBy: r.GroupBy,
		Threshold: r.Threshold, Window: r.Window, DenialType: r.DenialType, MinDecisions: r.MinDecisions, Days: r.Days}
}

func newAlertRule(r alerts.Rule) wire.AlertRule {
	return wire.AlertRule{RuleID: r.RuleID, Kind: r.Kind, Description: r.Description, GroupBy: r.GroupBy,
		Threshold: r.Threshold, Window: r.Window, DenialType: r.DenialType, MinDecisions: r.MinDecisions, Days: r.Days}
}

// listAlertRules handles GET /v1/alerts/rules.
func (s *Server) listAlertRules(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	resp := wire.AlertRules{Rules: []wire.AlertRule{}}
	for _, r := range tenantOf(c).Ledger.AlertRules() {
		resp.Rules = append(resp.Rules, newAlertRule(r))
	}
	return c.JSON(http.StatusOK, resp)
}

// setAlertRule handles POST /v1/alerts/rules: creates or replaces the rule
// with the body's rule_id (201 when it changed, 200 when an equal rule was
// already set and nothing was appended).
func (s *Server) setAlertRule(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var body wire.AlertRule
	if err := s.decodeJSON(c, &body); err != nil {
		return err
	}
	r := alertRuleDomain(body)
	changed, err := tenantOf(c).Ledger.SetAlertRule(c.Request().Context(), by, r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if changed {
		status = http.StatusCreated
	}
	return c.JSON(status, newAlertRule(r))
}

// deleteAlertRule handles DELETE /v1/alerts/rules/:rule_id.
func (s *Server) deleteAlertRule(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	if err := tenantOf(c).Ledger.DeleteAlertRule(c.Request().Context(), by, c.Param("rule_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listDeadLetters handles GET /v1/alerts/dead-letters.
func (s *Server) listDeadLetters(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	resp := wire.DeadLetters{DeadLetters: []wire.DeadLetter{}}
	if s.cfg.Alerts.DeadLetters != nil {
		for _, d := range s.cfg.Alerts.DeadLetters(tenantOf(c).ID) {
			resp.DeadLetters = append(resp.DeadLetters, wire.DeadLetter(d))
		}
	}
	return c.JSON(http.StatusOK, resp)
}

// alertRuleNotFound is the detail of alerts.ErrNotFound.
const detailAlertRuleNotFound = "Alert rule not found."

// alertStatus maps the alert errors; ok false for any other error.
func alertStatus(err error) (code int, detail string, ok bool) {
	if errors.Is(err, alerts.ErrNotFound) {
		return http.StatusNotFound, detailAlertRuleNotFound, true
	}
	return 0, "", false
}

// countInvalidKey tells AlertHooks.InvalidKey of a request refused for its
// key: the key's display prefix when it has the key format, else
// "malformed" (garbage is not repeated into alerts), and the peer address
// (never a forwarded header a client can forge).
func (s *Server) countInvalidKey(req *http.Request, presented string) {
	if s.cfg.Alerts.InvalidKey == nil {
		return
	}
	prefix := "malformed"
	if keys.CheckFormat(presented) == nil {
		prefix = keys.DisplayPrefix(presented)
	}
	s.cfg.Alerts.InvalidKey(prefix, req.RemoteAddr)
}
