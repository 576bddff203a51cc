// Package projections holds the tables custos derives from its log, in
// three packages that import in one direction only:
//
//   - projections/writeside is the write side: the live state of a chain
//     under one lock, where every change is decided (with the acting key
//     checked at that position), appended and applied, and where keys are
//     authenticated.
//   - projections/readside is the read side: the audit index (secondary
//     indexes over the log), session trails, point-in-time tables, key
//     history and the authorization check of a whole log. It follows the
//     log asynchronously and never goes through the Ledger.
//   - projections/replay folds records into domain state and reads and
//     writes state snapshots; both sides use it.
//
// This package itself has no code.
package projections
