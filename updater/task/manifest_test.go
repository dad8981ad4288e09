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

// countingTask is a fakeTask that holds items.
type countingTask struct {
	fakeTask
	items uint64
}

func (c *countingTask) Items() uint64 { return c.items }

func TestTableItems(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "a", ID: 1, Version: 1}, &countingTask{items: 7})
	mustRegister(t, tab, Spec{Name: "b", ID: 2, Version: 1}, &fakeTask{version: 1})
	mustRegister(t, tab, Spec{Name: "c", ID: 3, Version: 1}, &countingTask{items: 5})
	if got := tab.Items(); got != 12 {
		t.Errorf("Items = %d; want 12 (tasks without a count add nothing)", got)
	}
}

func TestCheckTargets(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 2}, &fakeTask{version: 2})
	if err := tab.CheckTargets(Targets{"kv": {Oldest: 1, Newest: 2}}); err != nil {
		t.Errorf("a target reading v1..v2: %v", err)
	}
	if err := tab.CheckTargets(Targets{"kv": {Oldest: 1, Newest: 1}}); err == nil {
		t.Error("a target reading only v1 passed, but kv writes no older than v2")
	}
	if err := tab.CheckTargets(nil); err != nil {
		t.Errorf("no manifest: %v", err)
	}
}
