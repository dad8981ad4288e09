package bsp

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEntities: the entities lump is not a list of { "key" "value" ... }
// blocks, or its first entity is not the worldspawn.
var ErrEntities = errors.New("bsp: bad entities")

// KeyValue is one "key" "value" pair of an entity.
type KeyValue struct{ Key, Value string }

// Entity is one block of the entities lump, its pairs in file order (the
// order matters to QuakeC spawn functions only through duplicates, but keeping
// it makes the text reproducible).
type Entity []KeyValue

// Get returns the value of the last pair named key (the engine's ED_ParseEdict
// lets a later pair overwrite an earlier one), or "".
func (e Entity) Get(key string) string {
	v := ""
	for _, kv := range e {
		if kv.Key == key {
			v = kv.Value
		}
	}
	return v
}

// ParseEntities reads entity text the way the engine's ED_LoadFromFile does:
// whitespace-separated tokens, quoted strings without escapes, "//" comments
// to the end of the line, the text ending at its first NUL.
func ParseEntities(text []byte) ([]Entity, error) {
	if i := strings.IndexByte(string(text), 0); i >= 0 {
		text = text[:i]
	}
	p := entityLexer{s: string(text)}
	var out []Entity
	for {
		tok, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if tok != "{" {
			return nil, fmt.Errorf("%w: entity %d: got %q, want {", ErrEntities, len(out), tok)
		}
		var e Entity
		for {
			key, ok, err := p.next()
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%w: entity %d: end of text before }", ErrEntities, len(out))
			}
			if key == "}" {
				break
			}
			val, ok, err := p.next()
			if err != nil {
				return nil, err
			}
			if !ok || val == "}" {
				return nil, fmt.Errorf("%w: entity %d: key %q has no value", ErrEntities, len(out), key)
			}
			e = append(e, KeyValue{key, val})
		}
		out = append(out, e)
	}
}

// entityLexer splits entity text into tokens (COM_Parse's rules).
type entityLexer struct {
	s string
	i int
}

func (p *entityLexer) next() (tok string, ok bool, err error) {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c <= ' ':
			p.i++
		case strings.HasPrefix(p.s[p.i:], "//"):
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case c == '"':
			end := strings.IndexByte(p.s[p.i+1:], '"')
			if end < 0 {
				return "", false, fmt.Errorf("%w: unterminated quote at byte %d", ErrEntities, p.i)
			}
			tok = p.s[p.i+1 : p.i+1+end]
			p.i += end + 2
			return tok, true, nil
		case c == '{' || c == '}':
			p.i++
			return string(c), true, nil
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] > ' ' && p.s[p.i] != '"' && p.s[p.i] != '{' && p.s[p.i] != '}' {
				p.i++
			}
			return p.s[start:p.i], true, nil
		}
	}
	return "", false, nil
}

// appendEntities writes entities as qbsp does: one pair per line, a NUL at
// the end (the engine treats the lump as a C string). Keys and values must not
// contain quotes or line breaks, which the format cannot carry.
func appendEntities(b []byte, es []Entity) ([]byte, error) {
	for i, e := range es {
		b = append(b, "{\n"...)
		for _, kv := range e {
			for _, s := range []string{kv.Key, kv.Value} {
				if strings.ContainsAny(s, "\"\n\r\x00") {
					return nil, fmt.Errorf("%w: entity %d: %q cannot be written (quote, line break or NUL)", ErrEntities, i, s)
				}
			}
			b = append(b, '"')
			b = append(b, kv.Key...)
			b = append(b, `" "`...)
			b = append(b, kv.Value...)
			b = append(b, "\"\n"...)
		}
		b = append(b, "}\n"...)
	}
	return append(b, 0), nil
}
