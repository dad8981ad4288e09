package main

import (
	"context"
	"errors"
	"io"
)

func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("selftest: not implemented yet")
}
