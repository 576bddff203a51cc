// Package alerting watches a running custos and raises alerts: it follows
// the durable heads of one chain like the audit index does, checks each new
// record once against the chain rules (incremental verify) and the whole
// chain on a schedule (full pass), counts denials and invalid-key
// rejections over sliding windows, looks for keys about to expire, and
// notices a failed store. Every alert it raises is appended by
// writeside.ActorAlerts through the Ledger (alert.raised), then handed to
// Config.Deliver (the webhook sender), except store failures, which cannot
// be recorded on the failed log and are only delivered.
//
// An Engine never sits on the evaluate path: it reads the log after the
// fact on its own goroutine. The one call from request handling,
// InvalidKey, takes a mutex for a few map operations and never blocks on
// I/O; a crossing it detects is handed to the engine goroutine through a
// bounded channel and dropped (logged) when that is full.
//
// Counts over windows live in memory and start empty at each start;
// once-only alerts (key expiry, verify failure) are remembered on the chain
// (alerts.State), so a restart does not repeat them.
package alerting
