package memcapable

import (
	"fmt"
	"strings"
	"testing"
)

func report(fail string) string {
	var b strings.Builder
	for _, n := range ASCIITests {
		res := "[pass]"
		if n == fail {
			res = "" // memcapable prints [FAIL] on stderr
		}
		fmt.Fprintf(&b, "%-40s%s\n", n, res)
	}
	if fail == "" {
		b.WriteString("All tests passed\n")
	}
	return b.String()
}

func TestProblems(t *testing.T) {
	if p := Problems(report(""), nil); len(p) != 0 {
		t.Errorf("Problems(all pass) = %q; want none", p)
	}
	if p := Problems(report("ascii cas"), nil); len(p) != 1 || !strings.Contains(p[0], `"ascii cas" = FAIL`) {
		t.Errorf("Problems(cas fails) = %q; want the cas failure", p)
	}
	if p := Problems(report("ascii cas"), map[string]string{"ascii cas": "why"}); len(p) != 0 {
		t.Errorf("Problems(cas fails, exempt) = %q; want none", p)
	}
	if p := Problems(report(""), map[string]string{"ascii cas": "why"}); len(p) != 1 || !strings.Contains(p[0], "exempt") {
		t.Errorf("Problems(cas passes, exempt) = %q; want a stale exemption", p)
	}
	truncated := report("")[:200]
	if p := Problems(truncated, nil); len(p) < 20 {
		t.Errorf("Problems(truncated report) = %d problems; want every test that did not run", len(p))
	}
	noSummary := strings.Replace(report(""), "All tests passed", "", 1)
	if p := Problems(noSummary, nil); len(p) != 1 {
		t.Errorf("Problems(no summary) = %q; want one problem", p)
	}
}
