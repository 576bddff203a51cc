package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/custos-dev/custos/httpapi/wire"
)

// maxTextAnswer bounds the text answers read whole (checkpoints, keys,
// receipts): a receipt of a chain of 2^63 records is under 4 KB plus its
// record.
const maxTextAnswer = 16 << 20

// Receipt returns the receipt of event eventID (GET
// /v1/audit/events/{event_id}/receipt): C2SP tlog-proof text, byte for
// byte as the server sent it. Check it with verify.Receipt or custos verify
// --receipt against a verifier key pinned out of band. A 404 (no such
// event) and a 503 (not covered by a checkpoint yet: retry) are *APIError.
func (c *Client) Receipt(ctx context.Context, eventID string) ([]byte, error) {
	return c.text(ctx, "/v1/audit/events/"+seg(eventID)+"/receipt")
}

// Checkpoint returns the latest signed checkpoint (GET
// /v1/audit/checkpoint), the signed note byte for byte.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/v1/audit/checkpoint")
}

// TenantCheckpoint returns tenant's latest signed checkpoint for a
// superadmin key (GET /v1/tenants/{id}/audit/checkpoint), as Checkpoint
// does for the key's own tenant.
func (c *Client) TenantCheckpoint(ctx context.Context, tenant string) ([]byte, error) {
	return c.text(ctx, "/v1/tenants/"+seg(tenant)+"/audit/checkpoint")
}

// VerifierKey returns the checkpoint verifier key the server says it signs
// the client's tenant's chain with (GET /v1/audit/vkey), without its
// newline. Pin the key out of band:
// one fetched from the server it checks proves nothing by itself.
func (c *Client) VerifierKey(ctx context.Context) (string, error) {
	b, err := c.text(ctx, "/v1/audit/vkey")
	return strings.TrimSpace(string(b)), err
}

// text GETs path and returns its whole 2xx answer.
func (c *Client) text(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTextAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if len(b) > maxTextAnswer {
		return nil, fmt.Errorf("client: GET %s: answer over %d bytes", path, maxTextAnswer)
	}
	return b, nil
}

// InclusionProof returns the inclusion proof of record seq in the tree of
// size size (GET /v1/audit/proof/inclusion; size 0: the current tree).
func (c *Client) InclusionProof(ctx context.Context, seq, size uint64) (wire.InclusionProof, error) {
	q := url.Values{"seq": {strconv.FormatUint(seq, 10)}}
	if size > 0 {
		q.Set("size", strconv.FormatUint(size, 10))
	}
	var out wire.InclusionProof
	err := c.do(ctx, http.MethodGet, "/v1/audit/proof/inclusion", q, nil, &out)
	return out, err
}

// ConsistencyProof returns the proof that the tree of size from is a
// prefix of the tree of size to (GET /v1/audit/proof/consistency; to 0:
// the current tree).
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (wire.ConsistencyProof, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if to > 0 {
		q.Set("to", strconv.FormatUint(to, 10))
	}
	var out wire.ConsistencyProof
	err := c.do(ctx, http.MethodGet, "/v1/audit/proof/consistency", q, nil, &out)
	return out, err
}
