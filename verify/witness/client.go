package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/custos-dev/custos/eventstore"
)

// ErrProofRefused means a witness found that the checkpoint does not extend
// the one it cosigned at its size (HTTP 422).
var ErrProofRefused = errors.New("witness refused the consistency proof")

// ErrKeyRefused means a witness found no signature by the key it holds for
// the checkpoint's origin (HTTP 403): the log signs with a key that is not
// the one the witness was given, as after the signing key was replaced or
// the data folder re-initialised under the same origin.
var ErrKeyRefused = errors.New("witness refused the log's signature")

// unreachableError is a request that got no answer (refused connection,
// timeout): the witness may be down.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// AddCheckpoint posts a checkpoint note to the witness at baseURL
// (POST baseURL/add-checkpoint) with the consistency proof from old, the
// size the caller believes the witness holds. It returns the witness's
// cosignature lines, or a *ConflictError carrying the witness's size
// (409), or ErrProofRefused (422: the consistency proof from old does not
// verify against what the witness cosigned), or an error naming the status
// and the witness's message.
func AddCheckpoint(ctx context.Context, client *http.Client, baseURL string, old uint64, proof []eventstore.Hash, msg []byte) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		body.WriteByte('\n')
	}
	body.WriteByte('\n')
	body.Write(msg)
	url := strings.TrimSuffix(baseURL, "/") + "/add-checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", baseURL, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &unreachableError{fmt.Errorf("witness %s: %w", baseURL, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("witness %s: read answer: %w", baseURL, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return b, nil
	case resp.StatusCode == http.StatusConflict && strings.HasPrefix(resp.Header.Get("Content-Type"), ContentTypeSize):
		size, err := strconv.ParseUint(strings.TrimSuffix(string(b), "\n"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("witness %s: 409 with a malformed size %q", baseURL, b)
		}
		return nil, &ConflictError{Size: size, Fork: size == old}
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: witness %s: %s", ErrKeyRefused, baseURL, strings.TrimSpace(string(b)))
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("%w: witness %s: %s", ErrProofRefused, baseURL, strings.TrimSpace(string(b)))
	default:
		return nil, fmt.Errorf("witness %s: %s: %s", baseURL, resp.Status, strings.TrimSpace(string(b)))
	}
}
