package task

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The task manifest: the list of an image's tasks and the state schema
// versions each reads, as text an image carries in its file
// (layout.TaskManifestSymbol) so that the kernel it is pushed to can save
// every task's state in a version the image reads, before it jumps. It is
// part of the signed image (updater/image reads it).
//
//	molt-tasks 1
//	<name> <id> <oldest> <newest>
//	...
//
// One line per task, each ending in '\n', fields separated by one space,
// numbers in decimal without leading zeros; names and numbers as in Spec.
// Images build the text from constants (ManifestHeader + each task's
// line), because the bytes must be in the file without running any code.

// ManifestHeader is the first line of a version-1 manifest.
const ManifestHeader = "molt-tasks 1\n"

// ErrManifest is wrapped by every ParseManifest error.
var ErrManifest = errors.New("task: manifest")

// ManifestLine is a task's line in a manifest.
func ManifestLine(s Spec) string {
	oldest := s.Oldest
	if oldest == 0 {
		oldest = s.Version
	}
	return fmt.Sprintf("%s %d %d %d\n", s.Name, s.ID, oldest, s.Version)
}

// FormatManifest returns the manifest of specs.
func FormatManifest(specs ...Spec) string {
	var b strings.Builder
	b.WriteString(ManifestHeader)
	for _, s := range specs {
		b.WriteString(ManifestLine(s))
	}
	return b.String()
}

// ParseManifest reads a manifest, rejecting anything FormatManifest
// would not write (and duplicate names or IDs).
func ParseManifest(text string) ([]Spec, error) {
	rest, ok := strings.CutPrefix(text, ManifestHeader)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrManifest, ManifestHeader)
	}
	var specs []Spec
	names, ids := map[string]bool{}, map[uint32]bool{}
	for n := 2; rest != ""; n++ {
		line, after, ok := strings.Cut(rest, "\n")
		if !ok {
			return nil, fmt.Errorf("%w: line %d does not end in a newline", ErrManifest, n)
		}
		rest = after
		f := strings.Split(line, " ")
		if len(f) != 4 {
			return nil, fmt.Errorf("%w: line %d: %q: want name, ID, oldest and newest version", ErrManifest, n, line)
		}
		var num [3]uint32
		for i, v := range f[1:] {
			x, err := strconv.ParseUint(v, 10, 32)
			if err != nil || strconv.FormatUint(x, 10) != v {
				return nil, fmt.Errorf("%w: line %d: %q is not a decimal number", ErrManifest, n, v)
			}
			num[i] = uint32(x)
		}
		s := Spec{Name: f[0], ID: num[0], Oldest: num[1], Version: num[2]}
		checked := s
		checked.Policy = PolicyFresh // the manifest carries no policy
		if err := checked.check(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrManifest, n, err)
		}
		if names[s.Name] || ids[s.ID] {
			return nil, fmt.Errorf("%w: line %d: task %q (ID %d) listed twice", ErrManifest, n, s.Name, s.ID)
		}
		names[s.Name], ids[s.ID] = true, true
		specs = append(specs, s)
	}
	return specs, nil
}

// ManifestTargets returns what the tasks of a manifest read, for Save.
func ManifestTargets(specs []Spec) Targets {
	t := make(Targets, len(specs))
	for _, s := range specs {
		t[s.Name] = Range{Oldest: s.Oldest, Newest: s.Version}
	}
	return t
}

// CheckTargets reports whether every running task can write a state
// version the target reads: the update service asks before it quiesces,
// so that an image whose tasks cannot read this kernel's state is refused
// with nothing changed.
func (t *Table) CheckTargets(targets Targets) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, e := range t.tasks {
		v, err := chooseVersion(e.spec, targets)
		if err == nil && v != e.spec.Version {
			if _, ok := e.task.(VersionSaver); !ok {
				err = fmt.Errorf("the target reads %v and this task writes only v%d (it has no SaveVersion)", targets[e.spec.Name], e.spec.Version)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("task %q: %w", e.spec.Name, err))
		}
	}
	return errors.Join(errs...)
}
