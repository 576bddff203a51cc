package keys

// Scope is what a key may do. The three values are wire values and never
// change. Ranked admin > read > evaluate: admin may do everything; read may
// do every GET and evaluate; evaluate may only evaluate.
type Scope string

// The scopes.
const (
	ScopeAdmin    Scope = "admin"
	ScopeRead     Scope = "read"
	ScopeEvaluate Scope = "evaluate"
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

// Allows reports whether a key with scope s may call a route that requires
// scope required: true when s ranks at least as high as required. An unknown
// scope on either side allows nothing.
func (s Scope) Allows(required Scope) bool {
	r := required.rank()
	return r > 0 && s.rank() >= r
}
