package tenancy

import "github.com/custos-dev/custos/domain/keys"

// ShareShortHash makes the owner index treat the first 8 hash bytes of
// plaintext as shared by two chains, as if another chain held a key whose
// hash started the same way: a clash too rare to make with real keys. It
// reports whether the index now says shared for plaintext.
func (r *Registry) ShareShortHash(plaintext string) bool {
	h := keys.Hash(plaintext)
	chain, _, _ := r.owners.Load(h)
	other := "another-chain"
	if chain == other {
		other += "-2"
	}
	clashing := h
	clashing[31] ^= 1
	r.owners.Store(clashing, r.owners.Number(other))
	_, shared, _ := r.owners.Load(h)
	return shared
}
