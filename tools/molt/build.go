package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	updimage "github.com/molt-os/molt/updater/image"
)

// Defaults shared by build, run and debug.
const (
	defaultImage   = "build/molt.elf"
	defaultPackage = "./cmd/kernel"
)

// cmdBuild links a kernel image, post-links it and signs it.
//
// Synopsis:
//
//	molt build [-o build/molt.elf] [-version v] [-key build/dev.key] [pkg]
//
// pkg (default ./cmd/kernel) is resolved in the current directory. The
// image trusts the public key of -key for self-updates (it is stamped into
// layout.TrustedKeysVar), and the signed bundle that `molt push` sends is
// written next to the ELF (molt.elf -> molt.img). When the default key is
// missing, build generates it and says so; a -key that is given explicitly
// must exist. An image that cannot be signed (it declares no handoff
// formats) is built with a warning and no bundle. The summary of the image (entry, size, headroom, build ID)
// goes to stdout, go build's messages to stderr.
func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", "build [-o build/molt.elf] [-version v] [-key build/dev.key] [pkg]", stderr)
	out := fs.String("o", defaultImage, "image file to write; the signed bundle goes next to it (.img)")
	version := fs.String("version", "", "release version stamped into the image")
	keyFile := fs.String("key", defaultKey, "ed25519 signing key (molt keygen); the image trusts its public key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pkg := defaultPackage
	switch fs.NArg() {
	case 0:
	case 1:
		pkg = fs.Arg(0)
	default:
		fs.Usage()
		return fmt.Errorf("%w: build takes at most one package, got %q", errUsage, fs.Args())
	}
	key, err := buildKey(*keyFile, flagGiven(fs, "key"), stderr)
	if err != nil {
		return err
	}
	r, bundle, err := buildSigned(ctx, image.BuildOptions{
		Package: pkg,
		Output:  *out,
		Version: *version,
		Stdout:  stderr, // go build prints nothing on success; keep stdout for the report
		Stderr:  stderr,
	}, key)
	if r == nil {
		return err
	}
	img := bundlePath(*out)
	if err != nil {
		// Not every image is meant to be pushed (test images that link
		// no handoff reader); it still boots with molt run. A stale
		// bundle must not outlive it.
		if rerr := os.Remove(img); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return rerr
		}
		fmt.Fprintf(stdout, "%s\n%s", *out, r)
		fmt.Fprintf(stderr, "molt: not signing %s, molt push would refuse it: %v\n", *out, err)
		return nil
	}
	if err := os.WriteFile(img, bundle, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s", *out, r)
	fmt.Fprintf(stdout, "signed    %s (%d bytes, key %s)\n", img, len(bundle), updimage.KeyIDOf(publicKey(key)))
	return nil
}

// buildSigned builds the image of o (to o.Output) trusting key's public
// half, and signs it with key. A nil report means the build failed; with
// a report and an error, the image was built but could not be signed.
func buildSigned(ctx context.Context, o image.BuildOptions, key ed25519.PrivateKey) (*image.Report, []byte, error) {
	o.Vars = append(o.Vars, layout.TrustedKeysVar+"="+updimage.FormatTrustedKeys(publicKey(key)))
	r, err := image.Build(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	elf, err := os.ReadFile(o.Output)
	if err != nil {
		return nil, nil, err
	}
	bundle, err := updimage.Sign(elf, key)
	return r, bundle, err
}

// bundlePath is where build writes the signed bundle of the ELF at elf.
func bundlePath(elf string) string { return strings.TrimSuffix(elf, ".elf") + ".img" }

// buildKey loads the signing key. The default key is generated when it is
// missing; an explicitly given one must exist.
func buildKey(path string, explicit bool, stderr io.Writer) (ed25519.PrivateKey, error) {
	k, err := loadKey(path)
	if err == nil || explicit || !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		return k, nil
	}
	pub, err := generateKey(path, false)
	if err != nil {
		return nil, fmt.Errorf("generating the development signing key: %w", err)
	}
	fmt.Fprintf(stderr, "molt: generated a development signing key %s (public %s.pub, key ID %s); images built with it trust only this key\n", path, path, updimage.KeyIDOf(pub))
	return loadKey(path)
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func publicKey(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
