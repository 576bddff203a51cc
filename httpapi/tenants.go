package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/httpapi/wire"
	"github.com/custos-dev/custos/projections/tenancy"
)

// ctxPrincipal is the context key of the request's tenancy.Principal.
const ctxPrincipal = "custos.principal"

// tenantOf returns the tenant of the request's key. The route table lets
// only tenant keys reach a tenant route, so it is never nil there.
func tenantOf(c echo.Context) *tenancy.Tenant {
	p, _ := c.Get(ctxPrincipal).(tenancy.Principal)
	return p.Tenant
}

// principalOf returns who authenticated the request.
func principalOf(c echo.Context) (tenancy.Principal, bool) {
	p, ok := c.Get(ctxPrincipal).(tenancy.Principal)
	return p, ok
}

// detailSuspended answers a key of a suspended tenant.
func detailSuspended(id string) string {
	return fmt.Sprintf("Tenant %s is suspended: its keys are refused until a superadmin resumes it.", id)
}

// --- superadmin routes -----------------------------------------------------

type tenantResponse struct {
	TenantID      string     `json:"tenant_id"`
	Name          string     `json:"name"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	SuspendedAt   *time.Time `json:"suspended_at"`
	SuspendReason *string    `json:"suspend_reason"`
}

func newTenantResponse(t tenants.Tenant) tenantResponse {
	r := tenantResponse{TenantID: t.TenantID, Name: t.Name, Status: string(t.Status), CreatedAt: t.CreatedAt.UTC()}
	if t.Status == tenants.StatusSuspended {
		at := t.SuspendedAt.UTC()
		r.SuspendedAt, r.SuspendReason = &at, &t.SuspendReason
	}
	return r
}

type createTenantRequest struct {
	TenantID     string `json:"tenant_id"`
	Name         string `json:"name"`
	AdminKeyName string `json:"admin_key_name"`
}

type tenantCreatedResponse struct {
	tenantResponse
	AdminKey wire.CreatedKey `json:"admin_key"`
}

// createTenant handles POST /v1/tenants: a new tenant and its first admin
// key, shown once.
func (s *Server) createTenant(c echo.Context) error {
	reg := s.cfg.Tenants
	p, _ := principalOf(c)
	var req createTenantRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	t, plaintext, created, err := reg.CreateTenant(c.Request().Context(), p, tenants.CreateCommand{TenantID: req.TenantID, Name: req.Name}, req.AdminKeyName)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, tenantCreatedResponse{newTenantResponse(t), createdKeyOf(created, plaintext)})
}

// listTenants handles GET /v1/tenants.
func (s *Server) listTenants(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	out := []tenantResponse{}
	for _, t := range s.cfg.Tenants.Tenants() {
		out = append(out, newTenantResponse(t))
	}
	return c.JSON(http.StatusOK, map[string]any{"tenants": out})
}

// namedTenant returns the tenant of the path's :tenant_id, or a 404.
func (s *Server) namedTenant(c echo.Context) (*tenancy.Registry, tenants.Tenant, error) {
	reg := s.cfg.Tenants
	id := c.Param("tenant_id")
	for _, t := range reg.Tenants() {
		if t.TenantID == id {
			return reg, t, nil
		}
	}
	return nil, tenants.Tenant{}, fmt.Errorf("%w: %s", tenants.ErrNotFound, id)
}

// getTenant handles GET /v1/tenants/:tenant_id.
func (s *Server) getTenant(c echo.Context) error {
	if err := onlyQueryParams(c); err != nil {
		return err
	}
	_, t, err := s.namedTenant(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newTenantResponse(t))
}

type suspendTenantRequest struct {
	Reason string `json:"reason"`
}

// suspendTenant handles POST /v1/tenants/:tenant_id/suspend.
func (s *Server) suspendTenant(c echo.Context) error {
	reg, t, err := s.namedTenant(c)
	if err != nil {
		return err
	}
	var req suspendTenantRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p, _ := principalOf(c)
	info, err := reg.SuspendTenant(c.Request().Context(), p, t.TenantID, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newTenantResponse(info))
}

// resumeTenant handles POST /v1/tenants/:tenant_id/resume.
func (s *Server) resumeTenant(c echo.Context) error {
	reg, t, err := s.namedTenant(c)
	if err != nil {
		return err
	}
	if err := s.decodeJSON(c, &struct{}{}); err != nil {
		return err
	}
	p, _ := principalOf(c)
	info, err := reg.ResumeTenant(c.Request().Context(), p, t.TenantID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newTenantResponse(info))
}

type mintAdminKeyRequest struct {
	Name string `json:"name"`
}

// mintAdminKey handles POST /v1/tenants/:tenant_id/admin-keys: an admin key
// of that tenant, shown once, recorded on its chain by the superadmin.
func (s *Server) mintAdminKey(c echo.Context) error {
	reg, t, err := s.namedTenant(c)
	if err != nil {
		return err
	}
	var req mintAdminKeyRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p, _ := principalOf(c)
	plaintext, created, err := reg.MintAdminKey(c.Request().Context(), p, t.TenantID, req.Name)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, createdKeyOf(created, plaintext))
}

// asTenant runs a tenant's read route (verify, export) for a superadmin
// on the path's tenant, as if that tenant's read key had asked.
func (s *Server) asTenant(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		reg, info, err := s.namedTenant(c)
		if err != nil {
			return err
		}
		t, ok := reg.Tenant(info.TenantID)
		if !ok {
			return fmt.Errorf("%w: %s", tenants.ErrNotFound, info.TenantID)
		}
		p, _ := principalOf(c)
		c.Set(ctxPrincipal, tenancy.Principal{Key: p.Key, Tenant: t})
		return h(c)
	}
}

// tenantStatus maps the tenants package's errors but validation (see
// statusOf).
func tenantStatus(err error) (int, string, bool) {
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return http.StatusNotFound, "Tenant not found.", true
	case errors.Is(err, tenants.ErrExists):
		return http.StatusConflict, "A tenant with this id exists already (ids are never reused).", true
	case errors.Is(err, tenants.ErrSuspended):
		return http.StatusConflict, "The tenant is suspended already.", true
	case errors.Is(err, tenants.ErrActive):
		return http.StatusConflict, "The tenant is not suspended.", true
	case errors.Is(err, tenants.ErrTenantSuspended):
		return http.StatusForbidden, "The tenant is suspended: its keys change nothing until a superadmin resumes it.", true
	}
	return 0, "", false
}
