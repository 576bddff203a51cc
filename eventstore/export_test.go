package eventstore

import "github.com/cockroachdb/pebble/v2"

// TamperForTest flips the lowest bit of the last payload byte of chain's
// stored record seq, writing through the store's own database: the test's
// stand-in for someone editing the data folder under a running server (a
// second Pebble handle cannot open a locked store). Tests only.
func TamperForTest(s *Store, chain string, seq uint64) error {
	key := RecordKey(chain, seq)
	v, closer, err := s.db.Get(key)
	if err != nil {
		return err
	}
	b := append([]byte(nil), v...)
	_ = closer.Close()
	b[len(b)-2*HashSize-1] ^= 0x01
	return s.db.Set(key, b, pebble.Sync)
}
