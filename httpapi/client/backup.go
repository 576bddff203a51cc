package client

import (
	"context"
	"net/http"
)

// BackupResult answers Backup.
type BackupResult struct {
	// Name is the backup's name, as asked.
	Name string `json:"name"`
	// Out is the folder the server wrote the copy to: its backup folder
	// (serve --backup-dir) joined with Name.
	Out        string  `json:"out"`
	DurationMS float64 `json:"duration_ms"`
}

// Backup makes the server write a consistent copy of its store while it
// keeps serving (POST /v1/admin/backup; admin). name is a folder name, not
// a path: the copy lands in name under the server's backup folder.
// ErrInvalid means a name outside ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (or
// with ".."), ErrConflict a name that exists, ErrForbidden (with its
// detail) a server without a backup folder. The copy opens like any data
// folder.
func (c *Client) Backup(ctx context.Context, name string) (BackupResult, error) {
	var res BackupResult
	body := struct {
		Name string `json:"name"`
	}{name}
	err := c.do(ctx, http.MethodPost, "/v1/admin/backup", nil, body, &res)
	return res, err
}
