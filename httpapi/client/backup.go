package client

import (
	"context"
	"net/http"
)

// BackupResult answers Backup.
type BackupResult struct {
	// Out is the folder the server wrote the copy to.
	Out        string  `json:"out"`
	DurationMS float64 `json:"duration_ms"`
}

// Backup makes the server write a consistent copy of its store into out
// while it keeps serving (POST /v1/admin/backup; admin). out is a path on
// the server's machine: absolute (else ErrInvalid) and not existing yet
// (else ErrConflict). The copy opens like any data folder. ErrNotFound
// means the server has backups disabled.
func (c *Client) Backup(ctx context.Context, out string) (BackupResult, error) {
	var res BackupResult
	body := struct {
		Out string `json:"out"`
	}{out}
	err := c.do(ctx, http.MethodPost, "/v1/admin/backup", nil, body, &res)
	return res, err
}
