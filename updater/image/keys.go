package image

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// KeyID names a public key in bundles and messages: the first 8 bytes of
// the SHA-256 of the 32-byte public key.
type KeyID [8]byte

// KeyIDOf returns the key ID of pub.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Key file tags: the first word of the one data line of a key file
// (docs/images.md §5).
const (
	PrivateKeyTag = "molt-ed25519-private-v1"
	PublicKeyTag  = "molt-ed25519-public-v1"
)

// MarshalPrivateKey returns the text of a private key file: comment lines,
// then "molt-ed25519-private-v1 <hex of the 32-byte seed>".
func MarshalPrivateKey(key ed25519.PrivateKey) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# molt image signing key (ed25519), PRIVATE: keep it secret.\n")
	fmt.Fprintf(&b, "# Whoever holds it can update every molt kernel that trusts key %s.\n", KeyIDOf(key.Public().(ed25519.PublicKey)))
	fmt.Fprintf(&b, "%s %s\n", PrivateKeyTag, hex.EncodeToString(key.Seed()))
	return b.Bytes()
}

// MarshalPublicKey returns the text of a public key file: comment lines,
// then "molt-ed25519-public-v1 <hex of the 32-byte public key>".
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# molt image signing key (ed25519), public; key ID %s.\n", KeyIDOf(pub))
	fmt.Fprintf(&b, "%s %s\n", PublicKeyTag, hex.EncodeToString(pub))
	return b.Bytes()
}

// ParsePrivateKey parses a private key file.
func ParsePrivateKey(text []byte) (ed25519.PrivateKey, error) {
	seed, err := parseKeyFile(text, PrivateKeyTag, PublicKeyTag, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey parses a public key file.
func ParsePublicKey(text []byte) (ed25519.PublicKey, error) {
	b, err := parseKeyFile(text, PublicKeyTag, PrivateKeyTag, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(b), nil
}

// parseKeyFile returns the bytes of the one "<tag> <hex>" line of a key
// file; other is the tag of the other kind of key, named in the error.
func parseKeyFile(text []byte, tag, other string, n int) ([]byte, error) {
	var found []byte
	sc := bufio.NewScanner(bytes.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		t, h, _ := strings.Cut(l, " ")
		switch {
		case t == other:
			return nil, fmt.Errorf("key file: line %d: this is a %s key, want a %s key", line, other, tag)
		case t != tag:
			return nil, fmt.Errorf("key file: line %d: starts with %q, want %q", line, t, tag)
		case found != nil:
			return nil, fmt.Errorf("key file: line %d: a second key", line)
		}
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != n {
			return nil, fmt.Errorf("key file: line %d: want %d hex digits after %s", line, 2*n, tag)
		}
		found = b
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if found == nil {
		return nil, fmt.Errorf("key file: no %q line", tag)
	}
	return found, nil
}

// trustedKeys is stamped by molt build with
// -ldflags -X <layout.TrustedKeysVar>=<keys> (FormatTrustedKeys): the public
// keys whose bundles this kernel accepts. Empty means it trusts none.
var trustedKeys string

// TrustedKeys returns the keys stamped into this image.
func TrustedKeys() ([]ed25519.PublicKey, error) { return ParseTrustedKeys(trustedKeys) }

// FormatTrustedKeys returns keys in the form of layout.TrustedKeysVar: hex
// public keys separated by commas (no spaces, so it passes -X intact).
func FormatTrustedKeys(keys ...ed25519.PublicKey) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = hex.EncodeToString(k)
	}
	return strings.Join(s, ",")
}

// ParseTrustedKeys parses the form FormatTrustedKeys writes.
func ParseTrustedKeys(s string) ([]ed25519.PublicKey, error) {
	if s == "" {
		return nil, nil
	}
	var keys []ed25519.PublicKey
	for i, h := range strings.Split(s, ",") {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted key %d: want %d hex digits, got %q", i, 2*ed25519.PublicKeySize, h)
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	return keys, nil
}
