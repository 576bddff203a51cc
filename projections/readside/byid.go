package readside

import (
	"context"
	"errors"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/custos-dev/custos/eventstore"
)

// EventByID returns the durable record of the chain whose ID is id, and
// false when there is none (or id is not a ULID). It needs no index: a
// record's ID is a ULID whose time is the record's time in whole
// milliseconds, and times never decrease along a chain, so it binary
// searches for the first record of that millisecond and reads forward
// through that millisecond only.
func (ix *Index) EventByID(ctx context.Context, id string) (eventstore.Record, bool, error) {
	u, err := ulid.ParseStrict(id)
	if err != nil || u.String() != id {
		return eventstore.Record{}, false, nil
	}
	ms := int64(u.Time())
	head, err := ix.store.Head(ix.chain)
	if err != nil {
		return eventstore.Record{}, false, err
	}
	from, err := ix.firstSeqFrom(ctx, time.UnixMilli(ms), head.Seq)
	if err != nil || from > head.Seq {
		return eventstore.Record{}, false, err
	}
	var found eventstore.Record
	err = ix.store.Records(ctx, ix.chain, from, head.Seq, func(r eventstore.Record) error {
		if r.Time.UnixMilli() > ms {
			return errStop
		}
		if r.ID == id {
			found = r
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return eventstore.Record{}, false, err
	}
	return found, found.Seq != 0, nil
}
