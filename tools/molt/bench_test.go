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
		{[]string{"-update-conns", "1,x"}, `-update-conns: "x" is not a count`},
		{[]string{"-update-items", "0"}, `-update-items: "0" is not a count in 1..200000`},
	} {
		err := run(t.Context(), append([]string{"bench"}, tc.args...), &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %q: err = %v; want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestUpdateScenarios(t *testing.T) {
	cfg := updateBenchConfig{Conns: []int{1, 100}, Items: []int{10000, 200000}, Reboot: updateScenario{"reboot", 100, 10000}}
	var got []string
	for _, sc := range cfg.scenarios() {
		got = append(got, sc.String())
	}
	want := []string{"update, 1 conns, 10000 items", "update, 100 conns, 10000 items", "update, 1 conns, 200000 items", "reboot, 100 conns, 10000 items"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("scenarios %q; want %q", got, want)
	}
}

func TestUpdateReportAndSVG(t *testing.T) {
	r := benchResult{Date: "2026-12-02T00:00:00Z", Accel: "tcg", Update: []updateSample{
		{Kind: "reboot", Conns: 100, Items: 10000, ClientGapMs: 1200},
		{Kind: "update", Conns: 1, Items: 10000, ClientGapMs: 800, KernelBlackoutMs: 780, ItemsAfter: 10000, ConnsAlive: 1,
			Phases: []updatePhase{{"upload", 900}, {"quiesce", 5}, {"jump", 260}}},
	}}
	var out strings.Builder
	printUpdate(&out, r.Update)
	for _, w := range []string{"quiesce 5.0, jump 260.0", "cold reboot gap / update gap, update, 1 conns, 10000 items: 1.5"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "upload") {
		t.Errorf("report lists the upload, which is not part of the blackout:\n%s", out.String())
	}
	p := filepath.Join(t.TempDir(), "update.svg")
	if err := writeUpdateSVG(p, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Count(s, "<rect") != 2 || strings.Count(s, `stroke-width="2"`) != 1 || !strings.HasSuffix(s, "</svg>\n") {
		t.Errorf("want two bars, one blackout tick and a closing tag:\n%s", s)
	}
	if i, j := strings.Index(s, "update, 1 conns"), strings.Index(s, "reboot, 100 conns"); i < 0 || j < i {
		t.Errorf("updates should be drawn before the reboot:\n%s", s)
	}
}
