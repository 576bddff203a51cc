package client

import (
	"context"
	"net/http"

	"github.com/custos-dev/custos/httpapi/wire"
)

// Backup makes the server write a consistent copy of its store while it
// keeps serving (POST /v1/admin/backup; admin). name is a folder name, not
// a path: the copy lands in name under the server's backup folder.
// ErrInvalid means a name outside ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (or
// with ".."), ErrConflict a name that exists, ErrForbidden (with its
// detail) a server without a backup folder. The copy opens like any data
// folder.
func (c *Client) Backup(ctx context.Context, name string) (wire.BackupResult, error) {
	var res wire.BackupResult
	err := c.do(ctx, http.MethodPost, "/v1/admin/backup", nil, wire.BackupRequest{Name: name}, &res)
	return res, err
}
