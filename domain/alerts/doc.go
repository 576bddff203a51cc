// Package alerts is the alerting subdomain: the rules an operator sets
// (what to watch, and when to speak), and the alerts raised under them.
// Every rule change and every alert raised is a past-tense fact on the
// chain (alert.rule_set, alert.rule_deleted, alert.raised), so the audit
// trail shows what the operator was told, and when, and replay rebuilds
// the rules and the once-only memory of alerts (State) like any other
// table.
//
// Watching (following the log, counting, verifying, delivering) is not
// here: the package does no I/O and reads no clock; the alerts engine
// outside the domain feeds it times and figures.
package alerts
