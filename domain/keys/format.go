package keys

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
)

// Key format constants. See the package doc for the layout.
const (
	// KeyPrefix starts every key.
	KeyPrefix = "cst_"
	// KeyLength is the length of a key in bytes (all ASCII).
	KeyLength = len(KeyPrefix) + bodyLength + checksumLength
	// Pattern matches a well-formed key (it does not check the checksum).
	Pattern = `^cst_[0-9A-Za-z]{49}$`

	bodyLength     = 43 // 62^43 > 2^256 > 62^42
	checksumLength = 6  // 62^6 > 2^32 > 62^5
	entropyBytes   = 32
	displayBody    = 6
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Generate returns a new key made from 32 bytes read from r (use
// crypto/rand.Reader in production). It fails only when r does.
func Generate(r io.Reader) (string, error) {
	var raw [entropyBytes]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("keys: read entropy: %w", err)
	}
	var limbs [entropyBytes / 4]uint32
	for i := range limbs {
		limbs[i] = uint32(raw[4*i])<<24 | uint32(raw[4*i+1])<<16 | uint32(raw[4*i+2])<<8 | uint32(raw[4*i+3])
	}
	clear(raw[:])

	var buf [KeyLength]byte
	copy(buf[:], KeyPrefix)
	body := buf[len(KeyPrefix) : len(KeyPrefix)+bodyLength]
	for i := bodyLength - 1; i >= 0; i-- {
		// Divide the 256-bit big-endian number in limbs by 62 in place.
		var rem uint64
		for j := range limbs {
			cur := rem<<32 | uint64(limbs[j])
			limbs[j] = uint32(cur / 62)
			rem = cur % 62
		}
		body[i] = base62Alphabet[rem]
	}
	sum := uint64(checksum(string(body)))
	for i := len(buf) - 1; i >= len(buf)-checksumLength; i-- {
		buf[i] = base62Alphabet[sum%62]
		sum /= 62
	}
	clear(limbs[:])
	return string(buf[:]), nil
}

// CheckFormat reports whether s is a well-formed key with a correct checksum.
// It does not allocate and does not say whether the key exists. Errors wrap
// ErrInvalidKey.
func CheckFormat(s string) error {
	if len(s) != KeyLength || s[:len(KeyPrefix)] != KeyPrefix {
		return errShape
	}
	body := s[len(KeyPrefix) : len(KeyPrefix)+bodyLength]
	for i := 0; i < len(body); i++ {
		if base62Value(body[i]) < 0 {
			return errShape
		}
	}
	var got uint64
	for i := len(s) - checksumLength; i < len(s); i++ {
		v := base62Value(s[i])
		if v < 0 {
			return errShape
		}
		got = got*62 + uint64(v)
	}
	if got != uint64(checksum(body)) {
		return errChecksum
	}
	return nil
}

// Hash returns the SHA-256 of the key string. It is the only form of a key
// that is ever stored.
func Hash(plaintext string) [32]byte {
	if len(plaintext) == KeyLength {
		// Hot path (every request): hash from a stack copy instead of
		// allocating a []byte.
		var buf [KeyLength]byte
		copy(buf[:], plaintext)
		return sha256.Sum256(buf[:])
	}
	return sha256.Sum256([]byte(plaintext))
}

// DisplayPrefix returns the part of a key that may be shown and stored in
// the clear to help people tell keys apart: KeyPrefix and the first 6 body
// characters (10 characters in all). For a string shorter than that it
// returns the whole string.
func DisplayPrefix(plaintext string) string {
	n := len(KeyPrefix) + displayBody
	if len(plaintext) < n {
		return plaintext
	}
	return plaintext[:n]
}

// checksum is CRC-32 (IEEE) over the bytes of s, the same value as
// crc32.ChecksumIEEE([]byte(s)), computed without converting s.
func checksum(s string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = tab[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// base62Value returns the digit value of c, or -1 if c is not base62.
func base62Value(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 10
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}
