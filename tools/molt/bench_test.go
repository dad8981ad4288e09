package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 3: 5, 18: 20, 45: 50, 120: 200, 0: 1} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v; want %v", raw, got, want)
		}
	}
}

func TestBenchSVG(t *testing.T) {
	r := benchResult{Date: "2026-11-22T00:00:00Z", Accel: "tcg", Samples: []bootSample{
		{HostToReadyMs: 150, EntryToReadyMs: 85, KinitMs: 13}, {HostToReadyMs: 250, EntryToReadyMs: 91, KinitMs: 15},
	}}
	p := filepath.Join(t.TempDir(), "x", "boot.svg")
	if err := writeBenchSVG(p, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if n := strings.Count(s, "<circle"); n != 6 {
		t.Errorf("chart has %d dots; want 6 (3 rows x 2 boots)", n)
	}
	if !strings.Contains(s, "300 ms") || !strings.HasSuffix(s, "</svg>\n") {
		t.Errorf("axis or closing tag missing:\n%s", s)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "-n 0 out of range"},
		{[]string{"-kv-rounds", "0"}, "-kv-rounds 0 out of range"},
		{[]string{"-net-bytes", "0"}, "-net-bytes 0 out of range"},
		{[]string{"-suites", "boot,disk"}, `unknown suite "disk"`},
	} {
		err := run(t.Context(), append([]string{"bench"}, tc.args...), &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %q: err = %v; want one containing %q", tc.args, err, tc.want)
		}
	}
}
