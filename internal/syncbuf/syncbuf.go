// Package syncbuf is a byte buffer that one goroutine may write (a
// process's or a VM's output) while others read it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it. The zero value keeps everything;
// with Limit > 0 it keeps the first Limit bytes and drops the rest (a
// chatty process cannot grow it without bound). It is safe for concurrent
// use.
type Buffer struct {
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p (as far as Limit allows) and always reports success, so
// that a writer such as os/exec never stops on it.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := p
	if s.Limit > 0 {
		keep = p[:max(0, min(len(p), s.Limit-s.b.Len()))]
	}
	s.b.Write(keep)
	return len(p), nil
}

// String returns a copy of what was kept.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
