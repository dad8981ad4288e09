package main

import (
	"context"
	"errors"
	"io"
)

func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("build: not implemented yet")
}
