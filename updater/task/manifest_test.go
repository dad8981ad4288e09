package task

import (
	"errors"
	"reflect"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	specs := []Spec{{Name: "kv", ID: 1, Oldest: 1, Version: 2}, {Name: "echo", ID: 2, Oldest: 1, Version: 1}}
	text := FormatManifest(specs...)
	if text != "molt-tasks 1\nkv 1 1 2\necho 2 1 1\n" {
		t.Errorf("FormatManifest = %q", text)
	}
	got, err := ParseManifest(text)
	if err != nil || !reflect.DeepEqual(got, specs) {
		t.Fatalf("ParseManifest = %+v, %v", got, err)
	}
	tg := ManifestTargets(got)
	if tg["kv"] != (Range{1, 2}) || tg["echo"] != (Range{1, 1}) {
		t.Errorf("targets %v", tg)
	}
	if empty, err := ParseManifest(ManifestHeader); err != nil || len(empty) != 0 {
		t.Errorf("a manifest without tasks: %v, %v", empty, err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, text := range []string{
		"", "molt-tasks 2\n", "molt-tasks 1\nkv 1 1 2", "molt-tasks 1\nkv 1 1\n",
		"molt-tasks 1\nkv 1 1 2 3\n", "molt-tasks 1\nkv 01 1 2\n", "molt-tasks 1\nkv x 1 2\n",
		"molt-tasks 1\nkv 1 2 1\n", "molt-tasks 1\nkv 0 1 1\n", "molt-tasks 1\nKV 1 1 1\n",
		"molt-tasks 1\nkv 1 1 1\nkv 2 1 1\n", "molt-tasks 1\nkv 1 1 1\necho 1 1 1\n",
		"molt-tasks 1\nkv  1 1 1\n", "molt-tasks 1\nkv 1 1 99999999999\n",
	} {
		if _, err := ParseManifest(text); !errors.Is(err, ErrManifest) {
			t.Errorf("ParseManifest(%q) = %v; want ErrManifest", text, err)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add("molt-tasks 1\nkv 1 1 2\necho 2 1 1\n")
	f.Add("molt-tasks 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		specs, err := ParseManifest(text)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error without ErrManifest: %v", err)
			}
			return
		}
		if again := FormatManifest(specs...); again != text {
			t.Fatalf("not canonical: %q -> %q", text, again)
		}
	})
}
