package shell

import (
	"bytes"
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
