package shell

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestRunCommands(t *testing.T) {
	var out bytes.Buffer
	Run(strings.NewReader("help\r\nbogus\nuptime\nps\nmem\nversion\npoweroff\nhelp\n"), &out)
	s := out.String()
	for _, want := range []string{"poweroff", `unknown command "bogus"`, "up ", "goroutines:", "Go heap:", "molt dev build unstamped"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// poweroff leaves the shell: the help after it must not run
	if strings.Count(s, "list commands") != 1 {
		t.Errorf("help ran %d times; want 1 (poweroff must end the shell)", strings.Count(s, "list commands"))
	}
}

func TestRegister(t *testing.T) {
	Register("greet", "say hello", func(w io.Writer, args []string) { fmt.Fprintf(w, "hello %s\n", strings.Join(args, ",")) })
	defer delete(commands, "greet")
	var out bytes.Buffer
	Run(strings.NewReader("greet a b\nhelp\n"), &out)
	if s := out.String(); !strings.Contains(s, "hello a,b") || !strings.Contains(s, "say hello") {
		t.Errorf("registered command: output\n%s\nlacks its reply or its help line", s)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a taken name did not panic")
		}
	}()
	Register("ps", "again", func(io.Writer, []string) {})
}
