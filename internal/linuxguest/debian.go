package linuxguest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Package is a Debian binary package at one version.
type Package struct {
	Name, Version string
}

func (p Package) String() string { return p.Name + " " + p.Version }

// run runs a Debian tool and returns its standard output; the error quotes
// its standard error.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// candidates returns the versions apt would install of the named
// packages, with the fields of their stanzas in the package lists. One
// apt-cache call answers for all of them: each call spends about half a
// second loading apt's cache, and a cached Build is mostly these calls.
func candidates(ctx context.Context, names ...string) (map[string]Package, map[string]map[string]string, error) {
	out, err := run(ctx, "", "apt-cache", append([]string{"show", "--no-all-versions"}, names...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is the package list there? run apt-get update)", err)
	}
	pkgs, all := map[string]Package{}, map[string]map[string]string{}
	for _, stanza := range strings.Split(string(out), "\n\n") {
		fields := parseStanza(stanza)
		p := Package{Name: fields["Package"], Version: fields["Version"]}
		if p.Name == "" || p.Version == "" {
			continue
		}
		if _, ok := pkgs[p.Name]; !ok { // the first stanza is the candidate
			pkgs[p.Name], all[p.Name] = p, fields
		}
	}
	for _, n := range names {
		if _, ok := pkgs[n]; !ok {
			return nil, nil, fmt.Errorf("apt-cache show %s: no candidate version", n)
		}
	}
	return pkgs, all, nil
}

// parseStanza splits a deb822 stanza into fields; continuation lines are
// joined to their field with newlines.
func parseStanza(stanza string) map[string]string {
	fields := map[string]string{}
	var key string
	for _, line := range strings.Split(stanza, "\n") {
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" {
				fields[key] += "\n" + line
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = k
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

// firstDepends returns the name of the first package of a Depends field,
// for example "linux-image-6.1.0-57-amd64" from
// "linux-image-6.1.0-57-amd64 (= 6.1.192-3)".
func firstDepends(field string) string {
	d, _, _ := strings.Cut(field, ",")
	d, _, _ = strings.Cut(d, "|")
	d, _, _ = strings.Cut(strings.TrimSpace(d), " ")
	return d
}

// debFile is where the cache keeps p's .deb (apt's own naming, with the
// epoch's colon escaped).
func debFile(debDir string, p Package) string {
	return filepath.Join(debDir, strings.ReplaceAll(p.Name+"_"+p.Version, ":", "%3a")+"_amd64.deb")
}

// fetch downloads p with apt-get download into debDir unless it is there
// already. apt checks the file against the signed package lists.
func fetch(ctx context.Context, debDir string, p Package, logf func(string, ...any)) (string, error) {
	dst := debFile(debDir, p)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(debDir, "download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	logf("linuxguest: downloading %s", p)
	start := time.Now()
	if _, err := run(ctx, tmp, "apt-get", "download", "-q", p.Name+"="+p.Version); err != nil {
		return "", fmt.Errorf("downloading %s: %w", p, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("downloading %s: apt-get download left %d .deb files", p, len(debs))
	}
	out, err := run(ctx, "", "dpkg-deb", "--field", debs[0], "Package", "Version")
	if err != nil {
		return "", err
	}
	if want := fmt.Sprintf("Package: %s\nVersion: %s", p.Name, p.Version); strings.TrimSpace(string(out)) != want {
		return "", fmt.Errorf("downloading %s: got %q", p, out)
	}
	fi, err := os.Stat(debs[0])
	if err != nil {
		return "", err
	}
	logf("linuxguest: downloaded %s (%.1f MB in %v)", p, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))
	return dst, os.Rename(debs[0], dst)
}

// extract unpacks a .deb's files into dst with dpkg-deb -x.
func extract(ctx context.Context, deb, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	_, err := run(ctx, "", "dpkg-deb", "-x", deb, dst)
	return err
}

// sharedLibs returns the paths ldd lists for an executable: the libraries
// as the host's loader resolves them, and the loader itself. The
// executable comes from the memcached package; the host has the same
// Debian release, so the paths are those the guest's loader will search.
func sharedLibs(ctx context.Context, exe string) ([]string, error) {
	out, err := run(ctx, "", "ldd", exe)
	if err != nil {
		return nil, err
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s (install memcached on the host so that ldd can resolve its libraries)", exe, line)
		}
		if _, rhs, ok := strings.Cut(line, "=> "); ok {
			line = rhs
		}
		p, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
		// else linux-vdso.so.1: provided by the kernel
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s listed no libraries: %q", exe, out)
	}
	return libs, nil
}

// toggleUsr maps /lib/x to /usr/lib/x and back: Debian 12 merges /usr, so
// ldd may name a file by a path dpkg does not know, and a package may
// ship it under either.
func toggleUsr(p string) string {
	if s, ok := strings.CutPrefix(p, "/usr/"); ok {
		return "/" + s
	}
	return "/usr" + p
}

// owners returns, for each path, the host package that ships the file
// (dpkg-query --search, once for all of them). Each path is looked up as
// given, with /usr toggled, and resolved through symbolic links, because
// Debian 12's merged /usr lets ldd name a file by a path dpkg does not
// record.
func owners(ctx context.Context, paths []string) (map[string]string, error) {
	variants := map[string][]string{}
	var query []string
	for _, p := range paths {
		v := []string{p, toggleUsr(p)}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			v = append(v, r, toggleUsr(r))
		}
		variants[p] = v
		query = append(query, v...)
	}
	// dpkg-query exits 1 when any pattern has no match, which most
	// variants do; what matters is whether each path has one.
	out, qerr := run(ctx, "", "dpkg-query", append([]string{"--search"}, query...)...)
	byPath := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		pkgs, path, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, "diversion ") {
			continue
		}
		pkg, _, _ := strings.Cut(pkgs, ", ")
		pkg, _, _ = strings.Cut(pkg, ":") // drop ":amd64"
		byPath[path] = pkg
	}
	res := map[string]string{}
	for _, p := range paths {
		for _, v := range variants[p] {
			if pkg, ok := byPath[v]; ok {
				res[p] = pkg
				break
			}
		}
		if res[p] == "" {
			return nil, fmt.Errorf("no installed package ships %s: %v", p, qerr)
		}
	}
	return res, nil
}

// readInTree reads the file at p (an absolute guest path) from an
// extracted package tree, following symbolic links inside the tree and
// trying the merged-/usr alias at each step.
func readInTree(root, p string) ([]byte, error) {
	orig := p
	for hop := 0; hop < 16; hop++ {
		var fi os.FileInfo
		var err error
		found := ""
		for _, c := range []string{p, toggleUsr(p)} {
			if fi, err = os.Lstat(filepath.Join(root, c)); err == nil {
				found = c
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: not in the package (looked for %s and %s)", orig, p, toggleUsr(p))
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s: %s is not a regular file", orig, found)
			}
			return os.ReadFile(filepath.Join(root, found))
		}
		target, err := os.Readlink(filepath.Join(root, found))
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(found), target)
		}
		p = filepath.Clean(target)
	}
	return nil, fmt.Errorf("%s: too many symbolic links", orig)
}
