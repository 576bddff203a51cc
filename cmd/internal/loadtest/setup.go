package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"time"
)

// admin calls the admin API of the target server.
type admin struct {
	client *http.Client
	base   string
	key    string
}

// apiError is a non-2xx answer of the admin API.
type apiError struct {
	method, path string
	status       int
	detail       string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.detail)
}

// call sends in (when not nil) as JSON and decodes a 2xx answer into out
// (when not nil). Other statuses are *apiError.
func (a *admin) call(ctx context.Context, method, path string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", a.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if len(b) > maxAnswerBytes {
		return fmt.Errorf("%s %s: answer larger than %d MiB", method, path, maxAnswerBytes>>20)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(b, &e) != nil || e.Detail == "" {
			e.Detail = string(truncate(b, 200))
		}
		return &apiError{method: method, path: path, status: resp.StatusCode, detail: e.Detail}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// maxAnswerBytes bounds an answer the setup reads whole. The policy list
// is the largest: about 450 bytes a policy, so 100k bulk policies (the most
// --setup-policies creates) come to some 45 MB.
const maxAnswerBytes = 256 << 20

func isStatus(err error, status int) bool {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e.status == status
	}
	return false
}

// agentKey is an evaluate key created for one run.
type agentKey struct {
	id, key string
}

// setup makes the server hold the load-test policies and approved agents
// and creates one evaluate key per role for this run, named with runID. It
// returns the keys in the order of roles; on an error it revokes the keys it
// created.
func (a *admin) setup(ctx context.Context, runID string) (keys []agentKey, err error) {
	if err := a.call(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		return nil, fmt.Errorf("no custos server answering at %s: %w", a.base, err)
	}
	var existing []map[string]any
	if err := a.call(ctx, http.MethodGet, "/v1/policies", nil, &existing); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	for _, r := range roles {
		if err := a.ensurePolicy(ctx, r.policy(), existing); err != nil {
			return nil, fmt.Errorf("policy for role %s: %w", r.agentRole(), err)
		}
		if err := a.ensureAgent(ctx, agentSpec{id: r.agentID(), role: r.agentRole(), name: r.name}); err != nil {
			return nil, fmt.Errorf("agent %s: %w", r.agentID(), err)
		}
	}
	defer func() {
		if err != nil {
			a.revoke(ctx, keys)
			keys = nil
		}
	}()
	for _, r := range roles {
		var created struct {
			KeyID string `json:"key_id"`
			Key   string `json:"key"`
		}
		body := map[string]any{
			"name": r.agentID() + "-" + runID, "scope": "evaluate", "agent_id": r.agentID(), "expires_days": 1,
		}
		if err := a.call(ctx, http.MethodPost, "/v1/keys", body, &created); err != nil {
			return keys, fmt.Errorf("create evaluate key for %s: %w", r.agentID(), err)
		}
		keys = append(keys, agentKey{id: created.KeyID, key: created.Key})
	}
	return keys, nil
}

// ensurePolicy creates want, or updates the policy of its role to want when
// it differs; an equal policy is left alone, so repeated runs append no
// policy events.
func (a *admin) ensurePolicy(ctx context.Context, want policySpec, existing []map[string]any) error {
	for _, p := range existing {
		if p["agent_role"] != want.AgentRole {
			continue
		}
		id, _ := p["policy_id"].(string)
		if samePolicy(p, want) {
			return nil
		}
		return a.call(ctx, http.MethodPut, "/v1/policies/"+url.PathEscape(id), want, nil)
	}
	return a.call(ctx, http.MethodPost, "/v1/policies", want, nil)
}

// samePolicy reports whether the stored policy got (as the API lists it)
// says what want says, ignoring the fields the server manages.
func samePolicy(got map[string]any, want policySpec) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var w map[string]any
	if json.Unmarshal(b, &w) != nil {
		return false
	}
	g := make(map[string]any, len(got))
	for k, v := range got {
		switch k {
		case "policy_id", "version", "created_at", "updated_at":
		default:
			g[k] = v
		}
	}
	return reflect.DeepEqual(g, w)
}

// ensureAgent registers the agent, or reuses it when it exists (409), and
// approves it unless it is approved already.
func (a *admin) ensureAgent(ctx context.Context, r agentSpec) error {
	register := map[string]any{
		"agent_id": r.id, "agent_role": r.role,
		"display_name": "custos loadtest (" + r.name + ")", "owner": "loadtest", "framework": "custos-loadtest",
	}
	var agent struct {
		AgentRole  string  `json:"agent_role"`
		PolicyName *string `json:"policy_name"`
		Status     string  `json:"status"`
	}
	path := "/v1/agents/" + url.PathEscape(r.id)
	err := a.call(ctx, http.MethodPost, "/v1/agents", register, &agent)
	switch {
	case isStatus(err, http.StatusConflict):
		if err := a.call(ctx, http.MethodGet, path, nil, &agent); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if agent.Status == "retired" {
		return fmt.Errorf("is retired and cannot be reused")
	}
	if agent.AgentRole != r.role || agent.PolicyName != nil {
		// Someone changed it: restore the role and the policy lookup by role.
		fix := map[string]any{"agent_role": r.role, "policy_name": ""}
		if err := a.call(ctx, http.MethodPut, path, fix, nil); err != nil {
			return err
		}
	}
	if agent.Status != "approved" {
		status := map[string]string{"status": "approved"}
		return a.call(ctx, http.MethodPatch, path+"/status", status, nil)
	}
	return nil
}

// revoke revokes keys, best effort, with its own deadline: it also runs
// after ctx is done (an interrupted run still cleans up).
func (a *admin) revoke(ctx context.Context, keys []agentKey) []error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var errs []error
	for _, k := range keys {
		if err := a.call(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(k.id), nil, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// truncate returns at most n bytes of b.
func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
