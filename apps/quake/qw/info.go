package qw

import (
	"errors"
	"fmt"
	"strings"
)

// Info string limits, as mvdsv 0.35 enforces them. A key or value longer
// than MaxInfoKeyLen does not fit Quake's 64-byte key buffers (MAX_KEY_STRING
// with its NUL); a userinfo longer than MaxUserinfoLen does not fit mvdsv's
// 1024-byte connect buffer; a serverinfo longer than MaxServerinfoLen does
// not fit MAX_SERVERINFO_STRING, and some clients overflow on it.
const (
	MaxInfoKeyLen    = 63
	MaxUserinfoLen   = 1023
	MaxServerinfoLen = 511
)

// ErrInfo is wrapped by every info string error.
var ErrInfo = errors.New("qw: bad info string")

// InfoPair is one key and its value.
type InfoPair struct {
	Key, Value string
}

// Info is a userinfo or serverinfo: "\key\value\key\value...", kept as an
// ordered list so that a parsed string is rebuilt byte for byte (clients and
// qstat show keys in the order the server sends them).
type Info []InfoPair

// ParseInfo parses s, refusing strings longer than maxLen (0: no limit),
// that do not start with a backslash, that end with a key without a value,
// that have an empty key, a duplicate key, a key or value over
// MaxInfoKeyLen, or a byte Validate rejects. The empty string is the empty
// Info.
func ParseInfo(s string, maxLen int) (Info, error) {
	if maxLen > 0 && len(s) > maxLen {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrInfo, len(s), maxLen)
	}
	if s == "" {
		return Info{}, nil
	}
	if s[0] != '\\' {
		return nil, fmt.Errorf("%w: %.40q does not start with a backslash", ErrInfo, s)
	}
	parts := strings.Split(s[1:], "\\")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("%w: key %.40q has no value", ErrInfo, parts[len(parts)-1])
	}
	in := make(Info, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		k, v := parts[i], parts[i+1]
		if err := checkInfoKV(k, v); err != nil {
			return nil, err
		}
		if _, dup := in.Get(k); dup {
			return nil, fmt.Errorf("%w: duplicate key %q", ErrInfo, k)
		}
		in = append(in, InfoPair{k, v})
	}
	return in, nil
}

// checkInfoKV applies the per-pair rules: a non-empty key, both at most
// MaxInfoKeyLen bytes, and none of the bytes that would break a carrier:
// backslash (the separator), NUL (ends a wire string), '"' (ends the quoted
// userinfo of "connect" and the quoted fields of a status line), and
// newline (ends a connectionless line and a status player line).
func checkInfoKV(k, v string) error {
	if k == "" {
		return fmt.Errorf("%w: empty key", ErrInfo)
	}
	if len(k) > MaxInfoKeyLen {
		return fmt.Errorf("%w: key %.40q is %d bytes, over %d", ErrInfo, k, len(k), MaxInfoKeyLen)
	}
	if len(v) > MaxInfoKeyLen {
		return fmt.Errorf("%w: value of %q is %d bytes, over %d", ErrInfo, k, len(v), MaxInfoKeyLen)
	}
	for _, s := range [2]string{k, v} {
		if i := strings.IndexAny(s, "\\\x00\"\n"); i >= 0 {
			return fmt.Errorf("%w: %q in %.40q", ErrInfo, s[i], s)
		}
	}
	return nil
}

// Get returns the value of key and whether it is present.
func (in Info) Get(key string) (string, bool) {
	for _, p := range in {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Value returns the value of key, or "" (Info_ValueForKey).
func (in Info) Value(key string) string {
	v, _ := in.Get(key)
	return v
}

// Set sets key to value, in place if the key exists, else at the end.
// It refuses what ParseInfo would refuse, so a built Info always parses. An
// empty value is kept (Quake's Info_SetValueForKey would delete the key:
// use Delete for that).
func (in *Info) Set(key, value string) error {
	if err := checkInfoKV(key, value); err != nil {
		return err
	}
	for i := range *in {
		if (*in)[i].Key == key {
			(*in)[i].Value = value
			return nil
		}
	}
	*in = append(*in, InfoPair{key, value})
	return nil
}

// Delete removes key if present.
func (in *Info) Delete(key string) {
	for i, p := range *in {
		if p.Key == key {
			*in = append((*in)[:i], (*in)[i+1:]...)
			return
		}
	}
}

// Len returns the length of the encoded string.
func (in Info) Len() int {
	n := 0
	for _, p := range in {
		n += 2 + len(p.Key) + len(p.Value)
	}
	return n
}

// String returns the encoded "\key\value..." string.
func (in Info) String() string {
	var b strings.Builder
	b.Grow(in.Len())
	for _, p := range in {
		b.WriteByte('\\')
		b.WriteString(p.Key)
		b.WriteByte('\\')
		b.WriteString(p.Value)
	}
	return b.String()
}

// Encode returns String, or an error if the result would be longer than
// maxLen (0: no limit) or a pair breaks ParseInfo's rules (possible only if
// the slice was built by hand rather than with Set).
func (in Info) Encode(maxLen int) (string, error) {
	for i, p := range in {
		if err := checkInfoKV(p.Key, p.Value); err != nil {
			return "", err
		}
		for _, q := range in[:i] {
			if q.Key == p.Key {
				return "", fmt.Errorf("%w: duplicate key %q", ErrInfo, p.Key)
			}
		}
	}
	if n := in.Len(); maxLen > 0 && n > maxLen {
		return "", fmt.Errorf("%w: %d bytes, over the limit of %d", ErrInfo, n, maxLen)
	}
	return in.String(), nil
}
