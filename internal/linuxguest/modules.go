package linuxguest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// guestModules are the modules the guest loads, with whatever they
// depend on: Debian's kernel builds the virtio-mmio transport and
// virtio-net as modules (virtio_net needs net_failover and failover,
// both need virtio and virtio_ring).
var guestModules = []string{"virtio_mmio", "virtio_net"}

// kmod is a kernel module file found in the extracted kernel package.
type kmod struct {
	name string // module name, with '_' (file names may use '-')
	path string // absolute path in the extracted tree
	rel  string // path under /lib/modules/<release>/
	deps []string
}

// moduleName turns a file name such as "virtio-rng.ko" into the module
// name "virtio_rng", the way the kernel and depmod name modules.
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".ko"), "-", "_")
}

// moduleDeps reads the "depends=" entry of a module's .modinfo section.
// The Debian package ships no modules.dep (depmod makes it at install
// time), and this is what depmod reads.
func moduleDeps(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: .modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// resolveModules finds roots and their dependencies under modDir (an
// extracted /lib/modules/<release>) and returns them in load order,
// dependencies first.
func resolveModules(modDir string, roots []string) ([]kmod, error) {
	byName := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			byName[moduleName(d.Name())] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing modules: %w", err)
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("no .ko files under %s (compressed modules are not supported)", modDir)
	}
	var order []kmod
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(from, " -> "), name)
		case 2:
			return nil
		}
		p, ok := byName[name]
		if !ok {
			if len(from) == 0 {
				return fmt.Errorf("module %s not found under %s (built in? then drop it from the list)", name, modDir)
			}
			return fmt.Errorf("module %s (needed by %s) not found under %s", name, from[len(from)-1], modDir)
		}
		state[name] = 1
		deps, err := moduleDeps(p)
		if err != nil {
			return err
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		rel, _ := filepath.Rel(modDir, p)
		order = append(order, kmod{name: name, path: p, rel: filepath.ToSlash(rel), deps: deps})
		return nil
	}
	for _, r := range roots {
		if err := visit(r, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
