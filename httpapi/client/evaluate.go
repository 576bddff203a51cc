package client

import (
	"context"
	"net/http"

	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/httpapi/wire"
)

// Decisions an evaluation answers with.
const (
	Allow = decision.Allow
	Deny  = decision.Deny
)

// Evaluate asks for a decision (POST /v1/context/evaluate; evaluate). Both
// ALLOW and DENY are successful answers.
// ErrUnavailable means the decision could not be recorded and was withheld:
// treat it as a deny.
func (c *Client) Evaluate(ctx context.Context, req wire.EvaluateRequest) (wire.Decision, error) {
	var out wire.Decision
	err := c.do(ctx, http.MethodPost, "/v1/context/evaluate", nil, req, &out)
	return out, err
}

// EvaluateWithReceipt is Evaluate asking for the decision's receipt too
// (header X-Custos-Receipt: true): Decision.Receipt holds it, C2SP
// tlog-proof text (docs/proofs.md), or is empty when the server keeps no
// checkpoints or its checkpoint is not visible yet (fetch it later with
// Receipt).
func (c *Client) EvaluateWithReceipt(ctx context.Context, req wire.EvaluateRequest) (wire.Decision, error) {
	var out wire.Decision
	err := c.doHeader(ctx, http.MethodPost, "/v1/context/evaluate", nil, http.Header{wire.ReceiptHeader: {"true"}}, req, &out)
	return out, err
}
