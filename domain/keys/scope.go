package keys

// Scope is what a key may do. The values are wire values and never change.
// The tenant scopes rank admin > read > evaluate: admin may do everything
// in its tenant; read may do every GET and evaluate; evaluate may only
// evaluate. ScopeSuperadmin stands apart (see there).
type Scope string

// The scopes.
const (
	ScopeAdmin    Scope = "admin"
	ScopeRead     Scope = "read"
	ScopeEvaluate Scope = "evaluate"
	// ScopeSuperadmin is the deployment's scope: it administers tenants
	// (create, suspend, resume, mint a first admin key, verify, export)
	// and nothing inside one. It is outside the ranking: it allows only
	// what requires ScopeSuperadmin, and no tenant scope allows that. Its
	// keys live only on the system chain; ParseScope refuses it, so no
	// tenant route can mint one (CreateSuperadmin does).
	ScopeSuperadmin Scope = "superadmin"
)

// rank orders the scopes; 0 means unknown.
func (s Scope) rank() int {
	switch s {
	case ScopeAdmin:
		return 3
	case ScopeRead:
		return 2
	case ScopeEvaluate:
		return 1
	}
	return 0
}

// ParseScope returns the Scope named by s, which must be exactly "admin",
// "read" or "evaluate"; otherwise it returns a *ValidationError for field
// "scope".
func ParseScope(s string) (Scope, error) {
	if sc := Scope(s); sc.rank() > 0 {
		return sc, nil
	}
	return "", &ValidationError{Field: "scope", Problem: "must be one of admin, read, evaluate"}
}

// Known reports whether s is one of the four scopes.
func (s Scope) Known() bool { return s.rank() > 0 || s == ScopeSuperadmin }

// Allows reports whether a key with scope s may call a route that requires
// scope required: true when s ranks at least as high as required, or both
// are ScopeSuperadmin. An unknown scope on either side allows nothing.
func (s Scope) Allows(required Scope) bool {
	if required == ScopeSuperadmin || s == ScopeSuperadmin {
		return s == required
	}
	r := required.rank()
	return r > 0 && s.rank() >= r
}
