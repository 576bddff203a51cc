package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// receiptContentType is the media type of a receipt: C2SP tlog-proof text.
const receiptContentType = "text/plain; charset=utf-8"

// receipt handles GET /v1/audit/events/{event_id}/receipt: a C2SP
// tlog-proof of the event (docs/proofs.md): its record encoding as extra
// data, its leaf index, its inclusion proof in the tree of the latest
// signed checkpoint and that checkpoint, byte for byte. Offline, custos
// verify --receipt checks it, or any tlog and note implementation.
func (s *Server) receipt(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	ev, err := s.evidence()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rec, ok, err := tenantOf(c).Index.EventByID(ctx, c.Param("event_id"))
	if err != nil {
		return fmt.Errorf("httpapi: receipt: %w", err)
	}
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "No event with this id.")
	}
	text, err := s.receiptOf(ctx, ev, tenantOf(c).ID, rec)
	if errors.Is(err, errNotCoveredYet) {
		// Durable but its commit's checkpoint is not visible yet: a
		// moment's race with the sequencer.
		c.Response().Header().Set("Retry-After", "1")
		return echo.NewHTTPError(http.StatusServiceUnavailable, "The event is not covered by a signed checkpoint yet; retry.")
	}
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, receiptContentType, text)
}

// errNotCoveredYet means no visible checkpoint covers the record yet.
var errNotCoveredYet = errors.New("httpapi: the record is not covered by a visible checkpoint yet")

// receiptOf returns rec's receipt (a record of chain) in the latest checkpoint, or in the
// latest cosigned one when that covers it; errNotCoveredYet when none
// does yet.
func (s *Server) receiptOf(ctx context.Context, ev EvidenceLog, chain string, rec eventstore.Record) ([]byte, error) {
	msg, err := ev.SignedCheckpoint(ctx, chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		return nil, errNotCoveredYet
	}
	if err != nil {
		return nil, fmt.Errorf("httpapi: receipt: %w", err)
	}
	cp, err := checkpoint.Parse(checkpoint.Text(msg))
	if err != nil {
		return nil, fmt.Errorf("httpapi: receipt: own checkpoint: %w", err)
	}
	index := rec.Seq - 1
	if co := s.cosigned(chain); co != nil {
		// A cosigned checkpoint makes the receipt checkable against the
		// witnesses too; it lags the latest by up to a push interval.
		if cc, err := checkpoint.Parse(checkpoint.Text(co)); err == nil && index < cc.Size {
			msg, cp = co, cc
		}
	}
	if index >= cp.Size {
		return nil, errNotCoveredYet
	}
	p, err := ev.InclusionProof(ctx, chain, index, cp.Size)
	if err != nil {
		return nil, proofError(err)
	}
	r := checkpoint.Receipt{Extra: rec.Encode(nil), Index: index, Checkpoint: msg}
	for _, h := range p {
		r.Proof = append(r.Proof, [checkpoint.HashSize]byte(h))
	}
	return r.Format(), nil
}
