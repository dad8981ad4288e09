package handoff

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	b := encode(t, Header{Generation: 3, Flags: FlagRollback, BuildID: id(0xa0)},
		sec{t: TypeClock, v: ClockVersion, p: testClock.Append(nil)},
		sec{t: TypeUpdateHistory, v: HistoryVersion, f: SectionCritical, p: historyPayload(t, testHistory(2))},
		sec{t: TypeExperimental + 1, v: 1, p: []byte("odd")},
		sec{t: TypeClock, v: 2, p: make([]byte, 40)},
		sec{t: TypeUpdateHistory, v: 1, p: make([]byte, 4)},
	)
	r, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := r.Describe(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("Describe:\n%s", got)
	for _, want := range []string{
		"handoff region: format 1, generation 3, 536 bytes, 5 sections\n",
		"  flags    rollback\n",
		"  writer   build a0a1a2a3",
		"section 0 at 0x68: clock v1, 32 bytes\n  monotonic 1.5s at TSC 3750000000 (2.500 GHz), wall 2026-07-01T12:00:00Z\n",
		"section 1 at 0x98: update-history v1, 264 bytes, critical\n",
		`  gen 1  "v0.1" (010203040506) -> "v0.2-rc1" (020304050607)  committed  started 1970-01-01T00:16:40Z  blackout 1ms` + "\n",
		`  gen 2  "v0.2" (020304050607) -> "v0.3-rc1" (030405060708)  pending  started 1970-01-01T00:33:20Z` + "\n",
		"section 2 at 0x1b0: experimental-0x80000001 v1, 3 bytes: unknown type, skipped\n",
		"section 3 at 0x1c8: clock v2, 40 bytes: cannot read v2 (this reader reads v1)\n",
		"section 4 at 0x200: update-history v1, 4 bytes\n  error: handoff: section 4 (update-history v1) at offset 0x200: malformed payload: update-history payload of 4 bytes cannot hold its 8-byte header: truncated\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe output lacks %q", want)
		}
	}
}
