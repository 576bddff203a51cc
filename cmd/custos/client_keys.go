package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
)

func newKeysCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, rotate and revoke API keys on a server",
		Long: `keys manages the API keys of a running server. The server is --server or
CUSTOS_SERVER (default ` + defaultServer + `); the key used is CUSTOS_API_KEY.

Exit codes: 0 success, 1 get of a key that does not exist, 2 any other error.`,
	}
	parent.AddCommand(
		newKeysCreateCommand(stdout, stderr),
		newKeysListCommand(stdout),
		newKeysGetCommand(stdout),
		newKeysRotateCommand(stdout, stderr),
		newKeysRevokeCommand(stdout),
	)
	return parent
}

// completeKeyIDs completes key ids, active ones first.
func completeKeyIDs(f *clientFlags) cobra.CompletionFunc {
	return completeWith(f, func(ctx context.Context, c *client.Client) ([]string, error) {
		list, err := c.ListKeys(ctx)
		var ids []string
		for _, k := range list {
			ids = append(ids, k.KeyID+"\t"+k.Name+" ("+k.Scope+")")
		}
		return ids, err
	})
}

func newKeysCreateCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var req wire.CreateKeyRequest
	var days int
	var expiresAt string
	cmd := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE",
		Short: "Create a key and print it (shown once)",
		Long: `create creates a key and prints it once: custos keeps only its SHA-256.
Scopes: admin (everything), read (every GET and evaluate), evaluate (evaluate
only; --agent-id binds it to one agent). Expiry: --expires-days or
--expires-at, else the server's default.

For scripts: KEY=$(custos keys create --name n --scope read -o json | jq -r .key)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			if cmd.Flags().Changed("expires-days") {
				req.ExpiresDays = &days
			}
			if expiresAt != "" {
				if _, err := time.Parse(time.RFC3339, expiresAt); err != nil {
					return withCode(2, fmt.Errorf("--expires-at %q: want an RFC 3339 time such as 2030-01-31T12:00:00Z", expiresAt))
				}
				req.ExpiresAt = &expiresAt
			}
			created, err := s.client.CreateKey(s.ctx, req)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				return s.printJSON(created)
			}
			fmt.Fprintln(stderr, "The key is shown once; custos keeps only its SHA-256. Store it now.")
			return fields(stdout,
				"key_id", created.KeyID,
				"name", created.Name,
				"scope", created.Scope,
				"agent_id", created.AgentID,
				"created_at", when(created.CreatedAt),
				"expires_at", when(created.ExpiresAt),
				"key", created.Key)
		},
	}
	cmd.Flags().StringVar(&req.Name, "name", "", "name of the key (required)")
	cmd.Flags().StringVar(&req.Scope, "scope", "", "admin, read or evaluate (required)")
	cmd.Flags().IntVar(&days, "expires-days", 0, "days until the key expires")
	cmd.Flags().StringVar(&expiresAt, "expires-at", "", "RFC 3339 time the key expires")
	cmd.Flags().StringVar(&req.AgentID, "agent-id", "", "agent an evaluate key is bound to")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("scope")
	cmd.MarkFlagsMutuallyExclusive("expires-days", "expires-at")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions(
		[]string{"admin", "read", "evaluate"}, cobra.ShellCompDirectiveNoFileComp))
	addClientFlags(cmd, &f)
	return cmd
}

func newKeysListCommand(stdout io.Writer) *cobra.Command {
	return listCommand(stdout, "list", "List every key ever created, newest first (never the keys themselves)",
		func(s *session) ([]wire.Key, error) { return s.client.ListKeys(s.ctx) },
		[]string{"KEY_ID", "NAME", "SCOPE", "PREFIX", "ACTIVE", "EXPIRES_AT", "LAST_USED_AT", "AGENT_ID"},
		func(k wire.Key) []string {
			return []string{k.KeyID, k.Name, k.Scope, k.Prefix, yesNo(k.IsActive), when(k.ExpiresAt), when(k.LastUsedAt), k.AgentID}
		})
}

func printKey(s *session, k wire.Key) error {
	if s.json() {
		return s.printJSON(k)
	}
	return fields(s.out,
		"key_id", k.KeyID,
		"name", k.Name,
		"scope", k.Scope,
		"prefix", k.Prefix,
		"active", yesNo(k.IsActive),
		"agent_id", k.AgentID,
		"created_at", when(k.CreatedAt),
		"expires_at", when(k.ExpiresAt),
		"revoked_at", when(k.RevokedAt),
		"rotated_from", deref(k.RotatedFrom),
		"rotated_to", deref(k.RotatedTo),
		"last_used_at", when(k.LastUsedAt))
}

func newKeysGetCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "get KEY_ID", "Show one key (exit 1 when it does not exist)", true, completeKeyIDs,
		func(s *session, id string) (wire.Key, error) { return s.client.GetKey(s.ctx, id) }, printKey)
}

func newKeysRotateCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate KEY_ID",
		Short: "Replace a key by a new one (printed once); the old one stops working after --grace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			var req wire.RotateKeyRequest
			if cmd.Flags().Changed("grace") {
				if grace < 0 || grace%time.Second != 0 {
					return withCode(2, fmt.Errorf("--grace %s: want whole seconds, not negative", grace))
				}
				secs := int(grace / time.Second)
				req.GraceSeconds = &secs
			}
			rotated, err := s.client.RotateKey(s.ctx, args[0], req)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				return s.printJSON(rotated)
			}
			fmt.Fprintln(stderr, "The new key is shown once; custos keeps only its SHA-256. Store it now.")
			return fields(stdout,
				"key_id", rotated.KeyID,
				"rotated_from", rotated.RotatedFrom,
				"name", rotated.Name,
				"scope", rotated.Scope,
				"agent_id", rotated.AgentID,
				"created_at", when(rotated.CreatedAt),
				"expires_at", when(rotated.ExpiresAt),
				"key", rotated.Key)
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long the old key keeps working, e.g. 5m (default: the server's)")
	addClientFlags(cmd, &f)
	cmd.ValidArgsFunction = completeKeyIDs(&f)
	return cmd
}

func newKeysRevokeCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "revoke KEY_ID", "Revoke a key for good", false, completeKeyIDs,
		func(s *session, id string) (wire.Key, error) { return s.client.RevokeKey(s.ctx, id) }, printKey)
}
