package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWriteAndRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			b.Write([]byte("x"))
		}
	})
	for range 100 {
		_ = b.String()
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 1000) {
		t.Errorf("kept %d bytes; want 1000", len(got))
	}
}

func TestLimit(t *testing.T) {
	b := Buffer{Limit: 5}
	for _, w := range []string{"abc", "def", "ghi"} {
		if n, err := b.Write([]byte(w)); n != 3 || err != nil {
			t.Errorf("Write(%q) = %d, %v; want 3, nil", w, n, err)
		}
	}
	if got := b.String(); got != "abcde" {
		t.Errorf("String() = %q; want the first 5 bytes", got)
	}
}
