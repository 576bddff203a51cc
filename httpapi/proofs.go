package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/httpapi/wire"
)

// EvidenceLog is what the evidence routes (/v1/audit/checkpoint, /vkey,
// /proof/...) read: the Merkle tree and signed checkpoints of the log.
// eventstore.Log has these methods; httpapi never opens the store itself.
type EvidenceLog interface {
	SignedCheckpoint(ctx context.Context, chain string) ([]byte, error)
	TreeHead(ctx context.Context, chain string) (eventstore.TreeHead, error)
	InclusionProof(ctx context.Context, chain string, index, size uint64) ([]eventstore.Hash, error)
	ConsistencyProof(ctx context.Context, chain string, from, to uint64) ([]eventstore.Hash, error)
}

func (s *Server) evidence() (EvidenceLog, error) {
	if s.cfg.Evidence == nil {
		return nil, echo.NewHTTPError(http.StatusNotFound, "This server keeps no signed checkpoints.")
	}
	return s.cfg.Evidence, nil
}

// getCheckpoint handles GET /v1/audit/checkpoint: the latest durable
// signed checkpoint as the signed note, byte for byte.
func (s *Server) getCheckpoint(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	ev, err := s.evidence()
	if err != nil {
		return err
	}
	if msg := s.cosigned(tenantOf(c).ID); msg != nil {
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", msg)
	}
	msg, err := ev.SignedCheckpoint(c.Request().Context(), tenantOf(c).ID)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		return echo.NewHTTPError(http.StatusNotFound, "No checkpoint yet: the chain is empty.")
	}
	if err != nil {
		return fmt.Errorf("httpapi: checkpoint: %w", err)
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", msg)
}

// cosigned returns the latest witness-cosigned checkpoint of chain, or
// nil (Config.Cosigned).
func (s *Server) cosigned(chain string) []byte {
	if s.cfg.Cosigned == nil {
		return nil
	}
	return s.cfg.Cosigned(chain)
}

// getVerifierKey handles GET /v1/audit/vkey: the note verifier key of the
// checkpoints of the key's tenant's chain, one line.
func (s *Server) getVerifierKey(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	if s.cfg.VerifierKey == nil {
		return echo.NewHTTPError(http.StatusNotFound, "This server keeps no signed checkpoints.")
	}
	chain := tenantOf(c).ID
	vkey, err := s.cfg.VerifierKey(chain)
	if err != nil {
		return fmt.Errorf("httpapi: verifier key of %s: %w", chain, err)
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(vkey+"\n"))
}

// treeSizeParam reads an optional tree size parameter; its default is the
// current tree size.
func treeSizeParam(c echo.Context, ev EvidenceLog, name string) (uint64, error) {
	size, err := uintParamStrict(c, name, 0)
	if err != nil || size != 0 {
		return size, err
	}
	th, err := ev.TreeHead(c.Request().Context(), tenantOf(c).ID)
	if err != nil {
		return 0, fmt.Errorf("httpapi: tree head: %w", err)
	}
	return th.Size, nil
}

// uintParamStrict parses an optional positive whole number: absent or
// empty gives def, anything that is not a whole number from 1 to
// math.MaxInt64 (0, a sign, a fraction, more digits) is a 400.
func uintParamStrict(c echo.Context, name string, def uint64) (uint64, error) {
	if c.QueryParam(name) == "" {
		return def, nil
	}
	n, err := uintParam(c, name, def, 1, math.MaxInt64)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid request: %s must be a whole number from 1 to %d.", name, int64(math.MaxInt64)))
	}
	return n, nil
}

// proofError turns a size the tree does not have into a 400.
func proofError(err error) error {
	if errors.Is(err, eventstore.ErrBadTreeSize) {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid request: "+strings.TrimPrefix(err.Error(), "eventstore: ")+".")
	}
	return fmt.Errorf("httpapi: proof: %w", err)
}

func b64Hashes(p []eventstore.Hash) []string {
	out := make([]string, len(p))
	for i := range p {
		out[i] = base64.StdEncoding.EncodeToString(p[i][:])
	}
	return out
}

// inclusion handles GET /v1/audit/proof/inclusion?seq=N&size=M: the audit
// path of record N (leaf N-1) in the tree of size M (default: now).
func (s *Server) inclusion(c echo.Context) error {
	if err := onlyQueryParams(c, "seq", "size"); err != nil {
		return err
	}
	ev, err := s.evidence()
	if err != nil {
		return err
	}
	if c.QueryParam("seq") == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid request: seq is required.")
	}
	seq, err := uintParamStrict(c, "seq", 0)
	if err != nil {
		return err
	}
	size, err := treeSizeParam(c, ev, "size")
	if err != nil {
		return err
	}
	p, err := ev.InclusionProof(c.Request().Context(), tenantOf(c).ID, seq-1, size)
	if err != nil {
		return proofError(err)
	}
	return c.JSON(http.StatusOK, wire.InclusionProof{Seq: seq, Index: seq - 1, TreeSize: size, Hashes: b64Hashes(p)})
}

// consistency handles GET /v1/audit/proof/consistency?from=A&to=B: the
// proof that the tree of size A is a prefix of the tree of size B (default:
// now). from=0 is refused: there is nothing to prove about the empty tree.
func (s *Server) consistency(c echo.Context) error {
	if err := onlyQueryParams(c, "from", "to"); err != nil {
		return err
	}
	ev, err := s.evidence()
	if err != nil {
		return err
	}
	if c.QueryParam("from") == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid request: from is required.")
	}
	from, err := uintParamStrict(c, "from", 0)
	if err != nil {
		return err
	}
	to, err := treeSizeParam(c, ev, "to")
	if err != nil {
		return err
	}
	p, err := ev.ConsistencyProof(c.Request().Context(), tenantOf(c).ID, from, to)
	if err != nil {
		return proofError(err)
	}
	return c.JSON(http.StatusOK, wire.ConsistencyProof{From: from, To: to, Hashes: b64Hashes(p)})
}
