package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootimagetest "github.com/molt-os/molt/boot/image/imagetest"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/image/imagetest"
	"github.com/molt-os/molt/updater/push"
)

func TestPushFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-to", "h"}, "push takes one image"},
		{[]string{"a.img", "b.img", "-to", "h"}, "push takes one image"},
		{[]string{"a.img"}, "no -to address"},
		{[]string{"a.img", "--to", "h:70000"}, `port "70000" out of range`},
		{[]string{"a.img", "-to", "h:x"}, `port "x" out of range`},
		{[]string{"a.img", "-to", ":7100"}, "no host"},
		{[]string{"a.img", "-to", "h", "-quiesce", "-1s"}, "negative -quiesce"},
		{[]string{"a.img", "-to", "h", "-timeout", "-1s"}, "negative -timeout"},
		{[]string{"a.img", "-to", "h", "-bogus"}, "-bogus"},
		{[]string{"-to", "h", "--", "a.img", "-b"}, "push takes one image"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"push"}, tt.args...), &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("molt push %q: %v; want a usage error with %q", tt.args, err, tt.want)
		}
		if !strings.Contains(stderr.String(), "usage: molt push") {
			t.Errorf("molt push %q: no usage on stderr", tt.args)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"10.0.2.15", "10.0.2.15:7100"}, {"host:9", "host:9"}, {"::1", "[::1]:7100"}, {"[::1]", "[::1]:7100"}, {"[::1]:80", "[::1]:80"},
	} {
		if got, err := pushAddr(tt.in); err != nil || got != tt.want {
			t.Errorf("pushAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestKeygen(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if err := run(t.Context(), []string{"keygen"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "wrote build/dev.key") || !strings.Contains(out.String(), "key ID ") {
		t.Errorf("output %q", out.String())
	}
	priv := checkKeyFiles(t, "build/dev.key")
	// No overwriting without -force, of either file.
	for _, args := range [][]string{{"keygen"}, {"keygen", "-o", "build/dev.key"}} {
		err := run(t.Context(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "exists; not overwriting") {
			t.Errorf("molt %q over an existing key: %v", args, err)
		}
	}
	os.Remove("build/dev.key")
	if err := run(t.Context(), []string{"keygen"}, &out, &out); err == nil || !strings.Contains(err.Error(), "dev.key.pub exists") {
		t.Errorf("keygen over an existing public key: %v", err)
	}
	if err := run(t.Context(), []string{"keygen", "-force"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if k := checkKeyFiles(t, "build/dev.key"); k.Equal(priv) {
		t.Error("-force kept the old key")
	}
	if err := run(t.Context(), []string{"keygen", "-o", "k/other"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	checkKeyFiles(t, "k/other")
	for _, args := range [][]string{{"keygen", "extra"}, {"keygen", "-o", ""}, {"keygen", "-x"}} {
		if err := run(t.Context(), args, &out, &out); !errors.Is(err, errUsage) {
			t.Errorf("molt %q: %v; want a usage error", args, err)
		}
	}
}

func checkKeyFiles(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	for p, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
	priv, err := loadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := image.ParsePublicKey(b)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("public key file: %v", err)
	}
	return priv
}

// TestBuildSigns builds the tiny kernel module with molt build: the default
// key is generated, the bundle is written next to the ELF and verifies
// with the key, and an explicitly given missing key is an error.
func TestBuildSigns(t *testing.T) {
	needGo(t)
	dir := t.TempDir()
	if err := bootimagetest.WriteModule(dir, bootimagetest.Kernel{}); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(filepath.Join("..", "..", "kernel", "imageinfo.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel", "imageinfo.go"), info, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", "off")
	t.Setenv("GOTOOLCHAIN", "local")
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"build", "-version", "v3"}, &stdout, &stderr); err != nil {
		t.Fatalf("molt build: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "generated a development signing key build/dev.key") {
		t.Errorf("stderr %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "signed    build/molt.img") {
		t.Errorf("stdout %q", stdout.String())
	}
	key := checkKeyFiles(t, "build/dev.key")
	b, err := os.ReadFile("build/molt.img")
	if err != nil {
		t.Fatal(err)
	}
	im, err := image.Verify(b, []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, image.DefaultLimits())
	if err != nil || im.Version != "v3" {
		t.Fatalf("Verify(build/molt.img) = %v, %v", im, err)
	}
	// A second build reuses the key quietly.
	stderr.Reset()
	if err := run(t.Context(), []string{"build", "-version", "v3"}, &stdout, &stderr); err != nil || strings.Contains(stderr.String(), "generated") {
		t.Errorf("second build: %v, %q", err, stderr.String())
	}
	if k := checkKeyFiles(t, "build/dev.key"); !k.Equal(key) {
		t.Error("the second build replaced the key")
	}
	err = run(t.Context(), []string{"build", "-key", "missing.key"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "signing key") || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("build with a missing -key: %v", err)
	}
}

// fakeService answers one push on a loopback listener the way the update
// service does, trusting pub, and returns its address.
func fakeService(t *testing.T, pub ed25519.PublicKey, report *push.Report) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := push.ReadRequest(c, 64<<20)
		if err != nil {
			push.Refuse(c, push.CodeOf(err), err.Error())
			return
		}
		push.WriteProgress(c, push.Progress{Stage: push.StageVerifying})
		if _, err := image.Verify(req.Bundle, []ed25519.PublicKey{pub}, image.DefaultLimits()); err != nil {
			push.Refuse(c, push.CodeOf(err), err.Error())
			return
		}
		push.Accept(c)
		push.WriteReport(c, report)
	}()
	return ln.Addr().String()
}

func TestPush(t *testing.T) {
	elf := imagetest.TinyKernel(t, "v4")
	dir := t.TempDir()
	elfPath := filepath.Join(dir, "molt.elf")
	if err := os.WriteFile(elfPath, elf, 0o644); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "k")
	pub, err := generateKey(keyPath, false)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := loadKey(keyPath)
	bundle, err := image.Sign(elf, key)
	if err != nil {
		t.Fatal(err)
	}
	imgPath := filepath.Join(dir, "molt.img")
	if err := os.WriteFile(imgPath, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &push.Report{Version: "v4", Blackout: 17 * time.Millisecond, Restored: push.Restored{Tasks: 2}, Lines: []string{"all good"}}

	// A bundle, flags after the image, two dashes.
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"push", imgPath, "--to", fakeService(t, pub, rep)}, &stdout, &stderr); err != nil {
		t.Fatalf("molt push: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"updated to v4", "blackout  17ms", "restored  2 tasks", "all good"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout %q lacks %q", stdout.String(), want)
		}
	}
	for _, want := range []string{"pushing " + imgPath, "version v4", "uploading", "(100%)", "kernel: verifying", "kernel: accepted the image"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
	// An ELF, signed on the way with -key.
	stdout.Reset()
	stderr.Reset()
	if err := run(t.Context(), []string{"push", "-key", keyPath, "-to", fakeService(t, pub, rep), elfPath}, &stdout, &stderr); err != nil {
		t.Fatalf("molt push ELF: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "signed "+elfPath+" with "+keyPath) {
		t.Errorf("stderr %q", stderr.String())
	}
	// Refused: a kernel that trusts another key.
	other, _, _ := ed25519.GenerateKey(nil)
	err = run(t.Context(), []string{"push", imgPath, "-to", fakeService(t, other, rep)}, &stdout, &stderr)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "refused the image") || !strings.Contains(err.Error(), "(unknown-key)") {
		t.Errorf("push to a kernel that trusts another key: %v", err)
	}
	// An ELF without a key.
	t.Chdir(dir)
	err = run(t.Context(), []string{"push", elfPath, "-to", "127.0.0.1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "needs signing, but there is no key build/dev.key") {
		t.Errorf("push an ELF without a key: %v", err)
	}
	// Nothing listening.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if err := run(ctx, []string{"push", imgPath, "-to", addr}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("push to a closed port: %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var b bytes.Buffer
		now := time.Unix(0, 0)
		p := &progressLine{w: &b, tty: tty, interval: time.Second, now: func() time.Time { return now }, start: now}
		if tty {
			p.interval = 250 * time.Millisecond
		}
		// 10 s of updates every 10 ms.
		for i := 1; i <= 1000; i++ {
			now = now.Add(10 * time.Millisecond)
			p.update(int64(i)<<20, 1000<<20)
		}
		p.note("kernel: verifying")
		p.finish()
		out := b.String()
		n := strings.Count(out, "uploading")
		if max := 41; tty && n > max || !tty && n > 11 {
			t.Errorf("tty %v: %d progress lines in 10 s", tty, n)
		}
		if !strings.Contains(out, "uploading 1000.0 MiB of 1000.0 MiB (100%), 100.0 MiB/s") || !strings.HasSuffix(out, "kernel: verifying\n") {
			t.Errorf("tty %v: output %q", tty, out)
		}
		if tty != strings.Contains(out, "\r") {
			t.Errorf("tty %v: carriage returns in %q", tty, out)
		}
	}
}
