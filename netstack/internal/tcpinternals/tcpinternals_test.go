package tcpinternals

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("Check() = %v with the pinned gVisor", err)
	}
}

// TestCheckRejects: what a gVisor upgrade that renamed, retyped or
// restructured a field looks like to the self-check.
func TestCheckRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(f *field)
		want string
	}{
		{"renamed", func(f *field) { f.path = "sndX" }, `has no field "sndX"`},
		{"retyped", func(f *field) { f.want = "*tcp.receiver" }, "type *tcp.sender, want *tcp.receiver"},
		{"inner rename", func(f *field) { f.path = "TCPEndpointStateInner.TSOffset.ms" }, `has no field "ms"`},
		{"not a struct", func(f *field) { f.path = "snd.x" }, "is not a struct"},
	} {
		list := append([]field(nil), fields...)
		i := 0
		if tc.name == "inner rename" {
			i = 4
		}
		tc.edit(&list[i])
		var l layout
		err := resolve(&l, list)
		if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: resolve = %v; want ErrLayout mentioning %q", tc.name, err, tc.want)
		}
	}
}
