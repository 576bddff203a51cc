package tenants

import (
	"regexp"
	"time"
)

// SystemChain is the chain that holds the tenant events and the superadmin
// keys. It is not a tenant id (ParseID refuses it), so no tenant's chain can
// be it.
const SystemChain = "system"

// DefaultID is the tenant of a new folder and of a folder written before
// tenants existed: its chain is the single chain of those releases.
const DefaultID = "default"

// MaxIDLen is the longest tenant id.
const MaxIDLen = 32

var idPattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// ParseID returns s if it is a tenant id (see the package doc), or a
// *ValidationError for field "tenant_id".
func ParseID(s string) (string, error) {
	if s == SystemChain {
		return "", &ValidationError{Field: "tenant_id", Problem: "'" + SystemChain + "' is reserved for the deployment's own chain"}
	}
	if !idPattern.MatchString(s) {
		return "", &ValidationError{Field: "tenant_id", Problem: "want 1 to 32 lowercase letters, digits and '-', starting with a letter and not ending with '-'"}
	}
	return s, nil
}

// Status is the lifecycle state of a tenant. Its values are wire values:
// append-only, never renamed.
type Status string

// The tenant statuses.
const (
	// StatusActive tenants serve their keys.
	StatusActive Status = "active"
	// StatusSuspended tenants answer their keys 403; their history stays
	// verifiable and exportable by a superadmin.
	StatusSuspended Status = "suspended"
)

// Tenant is the projected state of one tenant. Times are UTC.
type Tenant struct {
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// SuspendedAt and SuspendReason are set while the tenant is suspended.
	SuspendedAt   time.Time `json:"suspended_at,omitzero"`
	SuspendReason string    `json:"suspend_reason,omitempty"`
}
