package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/text"
)

// enumParams lists, for every query parameter that takes one of a fixed
// set of values, those values. A name means the same on every route.
var enumParams = map[string][]string{
	"type":     domain.EventTypes(),
	"decision": {decision.Allow, decision.Deny},
	"format":   {"jsonl", "csv"},
	"kind":     alerts.Kinds(),
	"status":   {string(agents.StatusDraft), string(agents.StatusApproved), string(agents.StatusSuspended), string(agents.StatusRetired)},
}

// onlyQueryParams checks a request's query parameters against the names
// its route allows, answering 400 for the first one that is unknown (so
// that a misspelt filter never silently returns everything), given more
// than once (every parameter takes one value: which would count?), holds a
// character text.Identifier refuses, or is not one of its enumParams
// values. An empty value means absent. Numbers and times are the handlers'
// to parse (422).
func onlyQueryParams(c echo.Context, allowed ...string) error {
	params := c.QueryParams()
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names) // the same request always names the same problem
	for _, name := range names {
		values := params[name]
		if name == minSeqParam {
			continue // every read takes it (cluster.go)
		}
		if !slices.Contains(allowed, name) {
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Unknown query parameter %q; allowed: %s.", name, strings.Join(allowed, ", ")))
		}
		if len(values) > 1 {
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Query parameter %q is given more than once.", name))
		}
		v := values[0]
		if err := text.Identifier(v); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Invalid request: query parameter %s %s.", name, text.Problem(err)))
		}
		if enum, ok := enumParams[name]; ok && v != "" && !slices.Contains(enum, v) {
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Invalid request: query parameter %s must be one of %s, got %q.", name, strings.Join(enum, ", "), v))
		}
	}
	return nil
}

// checkPathParams answers 400 when a path parameter holds a character
// text.Identifier refuses, before any handler looks it up.
func checkPathParams(c echo.Context) error {
	for i, name := range c.ParamNames() {
		if i >= len(c.ParamValues()) {
			break
		}
		if err := text.Identifier(c.ParamValues()[i]); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Invalid request: path parameter %s %s.", name, text.Problem(err)))
		}
	}
	return nil
}
