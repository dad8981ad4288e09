package conformance

import (
	"strings"
	"testing"
)

func TestNormalizeConsole(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\nb\n"},
		{"no newline", "no newline"},
		{"partial\r\nline", "partial\nline"},
		// The program wrote "\r\n"; the console made it "\r\r\n".
		{"dos\r\r\n", "dos\r\n"},
		// A lone "\r" (progress output) is the program's.
		{"50%\r100%\r\n", "50%\r100%\n"},
		// A bare "\n" cannot come from the console, but must survive.
		{"a\nb", "a\nb"},
	} {
		if got := string(NormalizeConsole([]byte(c.in))); got != c.want {
			t.Errorf("NormalizeConsole(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestFirstDiff(t *testing.T) {
	for _, c := range []struct {
		got, want string
		ok        bool
		d         Diff
		str       string
	}{
		{got: "", want: "", ok: true},
		{got: "a\nb\n", want: "a\nb\n", ok: true},
		{got: "a\nx\nc\n", want: "a\nb\nc\n",
			d: Diff{Line: 2, Got: "x\n", Want: "b\n"}, str: `line 2: got "x\n", want "b\n"`},
		{got: "a\n", want: "a\nb\n",
			d: Diff{Line: 2, GotEnd: true, Want: "b\n"}, str: `line 2: got end of output, want "b\n"`},
		{got: "a\nb\n", want: "a\n",
			d: Diff{Line: 2, Got: "b\n", WantEnd: true}, str: `line 2: got "b\n", want end of output`},
		{got: "a\nb", want: "a\nb\n",
			d: Diff{Line: 2, Got: "b", Want: "b\n"}, str: `line 2: got "b", want "b\n"`},
		{got: "x", want: "",
			d: Diff{Line: 1, Got: "x", WantEnd: true}, str: `line 1: got "x", want end of output`},
	} {
		d, ok := FirstDiff([]byte(c.got), []byte(c.want))
		if ok != c.ok || d != c.d {
			t.Errorf("FirstDiff(%q, %q) = %+v, %v; want %+v, %v", c.got, c.want, d, ok, c.d, c.ok)
			continue
		}
		if !ok && d.String() != c.str {
			t.Errorf("FirstDiff(%q, %q).String() = %s; want %s", c.got, c.want, d, c.str)
		}
	}
}

func TestDiffStringTruncates(t *testing.T) {
	long := strings.Repeat("x", 1000)
	d, _ := FirstDiff([]byte(long), []byte("y"))
	if s := d.String(); len(s) > 2*maxQuote+100 || !strings.Contains(s, `..., want "y"`) {
		t.Errorf("Diff.String() of a 1000-byte line = %q (%d bytes); want it cut after %d bytes", s, len(s), maxQuote)
	}
}

func TestContext(t *testing.T) {
	var got, want strings.Builder
	for i := 1; i <= 40; i++ {
		line := "same\n"
		if i == 10 {
			line = "molt line\n"
		}
		got.WriteString(line)
	}
	for i := 1; i <= 12; i++ {
		line := "same\n"
		if i == 10 {
			line = "want line\n"
		}
		want.WriteString(line)
	}
	d, ok := FirstDiff([]byte(got.String()), []byte(want.String()))
	if ok || d.Line != 10 {
		t.Fatalf("FirstDiff = %+v, %v; want a difference at line 10", d, ok)
	}
	c := Context([]byte(got.String()), []byte(want.String()), d, "molt", "want")
	for _, s := range []string{"molt>  10| molt line", "want>  10| want line", "molt    7| same", "molt  ... 15 more lines"} {
		if !strings.Contains(c, s) {
			t.Errorf("Context(...) lacks %q:\n%s", s, c)
		}
	}
	if strings.Contains(c, "molt    6|") || strings.Contains(c, "want    6|") {
		t.Errorf("Context(...) shows lines outside the window:\n%s", c)
	}

	c = Context(nil, []byte("a\n"), Diff{Line: 1, GotEnd: true, Want: "a\n"}, "molt", "want")
	if !strings.Contains(c, "molt: (no output at line 1; 0 lines in all)") {
		t.Errorf("Context with no molt output = %q; want it to say there is none", c)
	}
}

func TestKernelLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"hello\n", ""},
		{"hello\nmolt: fault: #PF\nmolt:   RAX 0\n", "molt: fault: #PF"},
		{"the molt: kernel\n", ""},
		{"molt: last line without newline", "molt: last line without newline"},
	} {
		if got := KernelLine([]byte(c.in)); got != c.want {
			t.Errorf("KernelLine(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}
