package main

import (
	"context"
	"errors"
	"io"
)

func cmdConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("conformance: not implemented yet")
}
