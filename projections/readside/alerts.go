package readside

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/eventstore"
)

// AlertFilter selects alerts. Empty fields match everything; Since is an
// inclusive lower bound on the alert's record time (zero: unbounded).
type AlertFilter struct {
	RuleID, Kind string
	Since        time.Time
}

// AlertRecord is one alert.raised with where it sits on the chain.
type AlertRecord struct {
	Seq     uint64
	EventID string
	Alert   alerts.Raised
}

// Alerts calls fn for every alert.raised with seq > afterSeq that passes f,
// in seq order, until limit alerts were given (0: no limit). It reads the
// type postings of the index up to its checkpoint and the log after it
// (Query), so it sees every durable alert. It returns the seq of the last
// alert given and whether more may follow.
func (ix *Index) Alerts(ctx context.Context, f AlertFilter, afterSeq uint64, limit int, fn func(AlertRecord) error) (last uint64, more bool, err error) {
	n := 0
	_, _, err = ix.Query(ctx, EventFilter{Type: alerts.TypeRaised, From: f.Since}, afterSeq, 0, func(r eventstore.Record) error {
		ev, err := alerts.Decode(r.Type, r.Payload)
		if err != nil {
			return fmt.Errorf("alerts seq %d: %w", r.Seq, err)
		}
		a := ev.(alerts.Raised)
		if f.RuleID != "" && a.RuleID != f.RuleID || f.Kind != "" && a.Kind != f.Kind {
			return nil
		}
		if limit > 0 && n == limit {
			more = true
			return errStop
		}
		n++
		last = r.Seq
		return fn(AlertRecord{Seq: r.Seq, EventID: r.ID, Alert: a})
	})
	return last, more, err
}
