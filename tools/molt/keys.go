package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/molt-os/molt/updater/image"
)

// defaultKey is the signing key molt build uses, and generates when it is
// missing, so that `make run` works from a clean checkout.
const defaultKey = "build/dev.key"

// cmdKeygen writes a new ed25519 signing key.
//
// Synopsis:
//
//	molt keygen [-o build/dev.key] [-force]
//
// The private key goes to FILE (mode 0600), the public key to FILE.pub;
// both are text files (docs/images.md §5). Existing files are not
// overwritten unless -force is given.
func cmdKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "keygen [-o build/dev.key] [-force]", stderr)
	out := fs.String("o", defaultKey, "private key file to write; the public key goes to FILE.pub")
	force := fs.Bool("force", false, "overwrite existing key files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("%w: keygen takes no arguments, got %q", errUsage, fs.Args())
	}
	if *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: -o needs a file name", errUsage)
	}
	pub, err := generateKey(*out, *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (private: keep it secret) and %s.pub\nkey ID %s\n", *out, *out, image.KeyIDOf(pub))
	return nil
}

// generateKey writes a new key pair to path and path.pub. Without force it
// refuses to replace either file.
func generateKey(path string, force bool) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if !force {
		for _, p := range []string{path, path + ".pub"} {
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%s exists; not overwriting a key (use -force to replace it)", p)
			}
		}
	}
	if err := writeKeyFile(path, image.MarshalPrivateKey(priv), 0o600, force); err != nil {
		return nil, err
	}
	if err := writeKeyFile(path+".pub", image.MarshalPublicKey(pub), 0o644, force); err != nil {
		return nil, err
	}
	return pub, nil
}

// writeKeyFile creates path with mode perm. Without force, O_EXCL makes a
// file that appeared since the check an error rather than a victim.
func writeKeyFile(path string, data []byte, perm os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		// Remove first, so that the new file gets perm even if the old
		// one was more open (OpenFile keeps an existing file's mode).
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, flags, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadKey reads a private key file.
func loadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := image.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
