package memcload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"
)

// Latency is the distribution of request round trips on one connection.
// memcslap reports only a total time per phase, so the kv benchmark
// measures percentiles with this client of its own.
type Latency struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func (l Latency) String() string {
	return fmt.Sprintf("%d gets: p50 %v, p90 %v, p99 %v, max %v", l.N,
		l.P50.Round(time.Microsecond), l.P90.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.Max.Round(time.Microsecond))
}

// MeasureLatency stores one 100-byte item on the memcached server at addr
// and then times n gets of it, one at a time on one connection, each from
// writing the request to reading the end of the reply. Any reply other than
// the stored value is an error.
func MeasureLatency(ctx context.Context, addr string, n int) (Latency, error) {
	if n < 1 {
		return Latency{}, fmt.Errorf("memcload: %d gets; want at least 1", n)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Latency{}, fmt.Errorf("memcload: latency: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	value := strings.Repeat("v", 100)
	if _, err := fmt.Fprintf(c, "set molt-latency 0 0 %d\r\n%s\r\n", len(value), value); err != nil {
		return Latency{}, fmt.Errorf("memcload: latency: set: %w", err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
		return Latency{}, fmt.Errorf("memcload: latency: set: reply %q, %v", line, err)
	}
	want := "VALUE molt-latency 0 100\r\n" + value + "\r\nEND\r\n"
	got := make([]byte, len(want))
	req := []byte("get molt-latency\r\n")
	samples := make([]time.Duration, n)
	for i := range samples {
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return Latency{}, fmt.Errorf("memcload: latency: get %d: %w", i, err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			return Latency{}, fmt.Errorf("memcload: latency: get %d: %w", i, err)
		}
		samples[i] = time.Since(start)
		if string(got) != want {
			return Latency{}, fmt.Errorf("memcload: latency: get %d: reply %q", i, got)
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pct := func(p int) time.Duration { return samples[(len(samples)-1)*p/100] }
	return Latency{N: n, P50: pct(50), P90: pct(90), P99: pct(99), Max: samples[n-1]}, nil
}
