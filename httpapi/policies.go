package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/custos-dev/custos/domain/policy"
)

// The policy document is its own wire format: AutoPIL's field names, which
// teams already write in YAML, are the contract (docs/policy-semantics.md). So
// handlers read and answer policy.Policy as it is instead of a copy of its
// twenty fields; version, created_at and updated_at are set by the server
// and ignored on input.

func (s *Server) listPolicies(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	list := tenantOf(c).Ledger.Policies()
	if past, _, err := s.asOf(c); err != nil {
		return err
	} else if past != nil {
		list = past.Policies.List()
	}
	if list == nil {
		list = []policy.Policy{}
	}
	return c.JSON(http.StatusOK, list) // a bare array, as AutoPIL's clients expect
}

func (s *Server) getPolicy(c echo.Context) error {
	if err := onlyQueryParams(c, "as_of"); err != nil {
		return err
	}
	past, _, err := s.asOf(c)
	if err != nil {
		return err
	}
	if past != nil {
		p, ok := past.Policies.ByID(c.Param("policy_id"))
		if !ok {
			return policy.ErrNotFound
		}
		return c.JSON(http.StatusOK, p)
	}
	p, err := tenantOf(c).Ledger.Policy(c.Param("policy_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) createPolicy(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var p policy.Policy
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	created, err := tenantOf(c).Ledger.CreatePolicy(c.Request().Context(), by, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, created)
}

func (s *Server) updatePolicy(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	var p policy.Policy
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	updated, err := tenantOf(c).Ledger.UpdatePolicy(c.Request().Context(), by, c.Param("policy_id"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, updated)
}

func (s *Server) deletePolicy(c echo.Context) error {
	by, err := actor(c)
	if err != nil {
		return err
	}
	deleted, err := tenantOf(c).Ledger.DeletePolicy(c.Request().Context(), by, c.Param("policy_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleted)
}
