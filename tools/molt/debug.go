package main

import (
	"context"
	"errors"
	"io"
)

func cmdDebug(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("debug: not implemented yet")
}
