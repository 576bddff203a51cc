package httpapi

import "github.com/custos-dev/custos/domain/keys"

// Test hooks for the external httpapi_test package.

// NoAuth marks a public route in the route table.
const NoAuth = noAuth

// RouteScopes returns a fresh copy of the route table New uses.
func RouteScopes() map[string]keys.Scope { return routeScopes() }

// NewWithRouteTable is New with another route table.
var NewWithRouteTable = newServer

// StatusOf is the error handler's mapping of an error to status and detail.
var StatusOf = statusOf

// MaxBodyBytes is the request body limit.
const MaxBodyBytes = maxBodyBytes

// VerifyReport is the copy of a verify.Report into its wire shape.
var VerifyReport = verifyReport
