package readside

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/replay"
)

// AuthorizationReport is the result of CheckAuthorization.
type AuthorizationReport struct {
	Chain string `json:"chain"`
	// Checked is the number of records folded (the head's seq).
	Checked uint64 `json:"checked"`
	// Violations lists every record that broke an authorization invariant,
	// in log order; empty when the log is clean.
	Violations []domain.Violation `json:"violations"`
}

// CheckAuthorization folds chain from genesis with a domain.Auditor and
// reports every record whose actor key was not valid for it at its seq,
// every ALLOW by a key revoked or expired at its seq, and every position
// with no active admin key. It reads only durable records and needs no
// snapshot or index, so it runs on a read-only store (an offline copy) as
// well as a live one. An error means the check could not finish: a record
// that does not decode or apply, or a read error.
func CheckAuthorization(ctx context.Context, store eventstore.Log, chain string) (AuthorizationReport, error) {
	report := AuthorizationReport{Chain: chain, Violations: []domain.Violation{}}
	auditor := domain.NewAuditor()
	err := store.Records(ctx, chain, 1, 0, func(r eventstore.Record) error {
		ev, err := domain.Decode(r.Type, r.Payload)
		if err != nil {
			return fmt.Errorf("readside: authorization check seq %d: %w", r.Seq, err)
		}
		found, err := auditor.Record(replay.Meta(r), ev)
		report.Violations = append(report.Violations, found...)
		if err != nil {
			return fmt.Errorf("readside: authorization check: %w", err)
		}
		report.Checked = r.Seq
		return nil
	})
	if err != nil {
		return AuthorizationReport{}, err
	}
	return report, nil
}
