package keys

// NewStateWithIDDigest returns an empty State that digests key ids with f
// instead of FNV-1a, so that a test can make ids clash.
func NewStateWithIDDigest(f func(id string) uint64) *State { return &State{digest: f} }
