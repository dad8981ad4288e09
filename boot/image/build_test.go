package image

import (
	"slices"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/layout"
)

func TestBuildArgs(t *testing.T) {
	got, err := buildArgs("./cmd/kernel", "/o/molt.elf", "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build", "-o", "/o/molt.elf", "-ldflags",
		"-E github.com/molt-os/molt/kernel.pvhEntry -T 0x200000 -X github.com/molt-os/molt/kernel.version=v1.2.3", "./cmd/kernel"}
	if !slices.Equal(got, want) {
		t.Errorf("buildArgs() = %q; want %q", got, want)
	}
	got, err = buildArgs("./cmd/kernel", "/o/molt.elf", "")
	if err != nil {
		t.Fatal(err)
	}
	if ld := got[4]; ld != "-E "+layout.EntrySymbol+" -T 0x200000" {
		t.Errorf("ldflags without version = %q", ld)
	}
	for _, bad := range []string{"v 1", "v'1", `v"1`, "v\\1", "v\t1"} {
		if _, err := buildArgs("p", "o", bad); err == nil {
			t.Errorf("buildArgs(version %q) succeeded; want an error", bad)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		name        string
		base, extra []string
		want        []string // entries that must be present
		absent      []string
	}{
		{"no experiment", []string{"HOME=/h", "GOOS=windows"}, nil,
			[]string{"HOME=/h", "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOEXPERIMENT=norandomizedheapbase64"}, []string{"GOOS=windows"}},
		{"experiment in environment", []string{"GOEXPERIMENT=greenteagc"}, nil,
			[]string{"GOEXPERIMENT=greenteagc,norandomizedheapbase64"}, []string{"GOEXPERIMENT=greenteagc"}},
		{"experiment in extra wins", []string{"GOEXPERIMENT=a"}, []string{"GOEXPERIMENT=b"},
			[]string{"GOEXPERIMENT=b,norandomizedheapbase64"}, []string{"GOEXPERIMENT=a"}},
		{"already there", nil, []string{"GOEXPERIMENT=norandomizedheapbase64,x"},
			[]string{"GOEXPERIMENT=norandomizedheapbase64,x"}, nil},
		{"extra cannot change the target", nil, []string{"GOARCH=arm64", "CGO_ENABLED=1", "GOFLAGS=-v"},
			[]string{"GOFLAGS=-v"}, []string{"GOARCH=arm64", "CGO_ENABLED=1"}},
		{"host GOAMD64 ignored", []string{"GOAMD64=v3"}, nil, []string{"GOAMD64=v1"}, []string{"GOAMD64=v3"}},
		{"GOAMD64 in extra kept", nil, []string{"GOAMD64=v2"}, []string{"GOAMD64=v2"}, nil},
	}
	for _, tt := range tests {
		env := buildEnv(tt.base, tt.extra)
		// os/exec lets the last of duplicate entries win; check the
		// effective value of each variable.
		eff := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			eff[k] = v
		}
		for _, w := range tt.want {
			k, v, _ := strings.Cut(w, "=")
			if eff[k] != v {
				t.Errorf("%s: effective %s=%q; want %q (env %q)", tt.name, k, eff[k], v, env)
			}
		}
		for _, a := range tt.absent {
			if slices.Contains(env, a) {
				t.Errorf("%s: env has %q (env %q)", tt.name, a, env)
			}
		}
		if eff["GOOS"] != "linux" || eff["GOARCH"] != "amd64" || eff["CGO_ENABLED"] != "0" {
			t.Errorf("%s: target is %s/%s cgo=%s", tt.name, eff["GOOS"], eff["GOARCH"], eff["CGO_ENABLED"])
		}
		for _, k := range []string{"GOOS", "GOARCH", "GOAMD64", "CGO_ENABLED", "GOEXPERIMENT"} {
			if n := strings.Count("\n"+strings.Join(env, "\n"), "\n"+k+"="); n != 1 {
				t.Errorf("%s: %d %s entries; want 1", tt.name, n, k)
			}
		}
	}
}

func TestBuildOptionErrors(t *testing.T) {
	if _, err := Build(t.Context(), BuildOptions{Output: "x"}); err == nil || !strings.Contains(err.Error(), "no package") {
		t.Errorf("Build(no package) = %v", err)
	}
	if _, err := Build(t.Context(), BuildOptions{Package: "./p"}); err == nil || !strings.Contains(err.Error(), "build ./p: no output") {
		t.Errorf("Build(no output) = %v", err)
	}
}
