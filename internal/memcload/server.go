package memcload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/molt-os/molt/internal/syncbuf"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Ping sends "version" to the memcached-compatible server at addr and
// returns its version string. It is how callers tell that a server (or a
// port forward to one) answers, rather than just accepts connections: a
// QEMU user-network forward accepts before the guest listens.
func Ping(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the answer to version from %s: %w", addr, err)
	}
	v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "VERSION ")
	if !ok {
		return "", fmt.Errorf("%s answered version with %q", addr, line)
	}
	return v, nil
}

// WaitReady pings addr until it answers or ctx is done.
func WaitReady(ctx context.Context, addr string) (string, error) {
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := Ping(pctx, addr)
		cancel()
		if err == nil {
			return v, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s never answered version: %w (last: %v)", addr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Server is a memcached process on the host, started by StartServer.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Version is what the server answered to "version".
	Version string

	cmd     *exec.Cmd
	output  *syncbuf.Buffer
	done    chan struct{} // closed when memcached has been reaped
	waitErr error         // valid after done
	stopped atomic.Bool
}

// DefaultServerArgs are the memcached flags StartServer uses besides the
// address: 64 MiB of cache and one worker thread, as the Linux guest runs
// it (see package linuxguest), and no UDP.
var DefaultServerArgs = []string{"-m", "64", "-t", "1", "-U", "0"}

// StartServer starts Debian's memcached (memcached from PATH) on 127.0.0.1
// at a free port with DefaultServerArgs and the given extra arguments, and
// returns once it answers. It is the host baseline of the kv benchmark and
// the server the tests load. memcached refuses to run as root without -u;
// as root it is started with -u nobody. The server is killed when ctx is
// done or Stop is called.
func StartServer(ctx context.Context, extra ...string) (*Server, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return nil, fmt.Errorf("memcload: %v (install the package memcached)", err)
	}
	// The port is found by binding :0 and closing, so another process may
	// take it before memcached binds it: try a few.
	for attempt := 1; ; attempt++ {
		s, err := startServer(ctx, bin, extra)
		if err == nil || attempt == 3 || ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			return s, err
		}
	}
}

var errPortTaken = errors.New("port taken")

func startServer(ctx context.Context, bin string, extra []string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("memcload: finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port)}, DefaultServerArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, extra...)
	cmdline := bin + " " + strings.Join(args, " ")
	s := &Server{
		Addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		output: &syncbuf.Buffer{Limit: 64 << 10},
		done:   make(chan struct{}),
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	// Do not outlive a test binary or benchmark that dies without Stop.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("memcload: starting %s: %w", cmdline, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.stopped.Store(true)
			s.cmd.Process.Kill()
		case <-s.done:
		}
	}()

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type answer struct {
		version string
		err     error
	}
	ready := make(chan answer, 1)
	go func() {
		v, err := WaitReady(rctx, s.Addr)
		ready <- answer{v, err}
	}()
	select {
	case a := <-ready:
		if a.err != nil {
			s.Stop()
			return nil, fmt.Errorf("memcload: %s: %w; output: %q", cmdline, a.err, s.output.String())
		}
		s.Version = a.version
		return s, nil
	case <-s.done:
		cancel()
		<-ready
		out := s.output.String()
		if strings.Contains(out, "Address already in use") {
			return nil, fmt.Errorf("memcload: memcached on port %d: %w", port, errPortTaken)
		}
		return nil, fmt.Errorf("memcload: %s exited at start (%v): %q", cmdline, s.waitErr, out)
	}
}

// Stop kills memcached and waits for it. It returns an error if memcached
// had already exited on its own, which means the measurements taken from
// it are suspect. It may be called more than once.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		if !s.stopped.Load() {
			return fmt.Errorf("memcload: memcached on %s exited by itself (%v): %q", s.Addr, s.waitErr, s.output.String())
		}
		return nil
	default:
	}
	s.stopped.Store(true)
	s.cmd.Process.Kill()
	<-s.done
	return nil
}
