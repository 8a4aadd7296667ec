package redistest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/redis"
)

// Private is a redis-server of the test binary's own, on a free loopback
// port, for the tests that stop or stall Redis: the shared one at Addr()
// must never be. One is started per package, on first use (see
// PrivateServer); TestMain closes it (ClosePrivate).
type Private struct {
	// Addr is host:port.
	Addr string

	bin, dir string
	mu       sync.Mutex
	cmd      *exec.Cmd
	paused   bool
}

// Timeouts of the stores opened on a private server: short, so that a
// stalled Redis fails a request within a second or two rather than the
// default three seconds per command.
const (
	PrivateDialTimeout = 500 * time.Millisecond
	PrivateIOTimeout   = 500 * time.Millisecond
)

var (
	privateOnce sync.Once
	private     *Private
	privateErr  error
)

// PrivateServer returns the package's private server, started on first
// use. It fails the test, loudly, when redis-server is not installed
// (./scripts/test installs it). When the test ends the server is running
// again (restarted or resumed if the test stopped or stalled it), for the
// next test.
func PrivateServer(t testing.TB) *Private {
	t.Helper()
	privateOnce.Do(func() { private, privateErr = startPrivate() })
	if privateErr != nil {
		t.Fatalf("private redis-server: %v", privateErr)
	}
	t.Cleanup(func() {
		if err := private.ensureRunning(); err != nil {
			t.Errorf("private redis-server after the test: %v", err)
		}
	})
	return private
}

// Main runs the package's tests and then stops its private server and
// its cluster: the body of a TestMain.
func Main(m *testing.M) {
	code := m.Run()
	ClosePrivate()
	CloseCluster()
	os.Exit(code)
}

// ClosePrivate stops the package's private server, if one was started.
// Call it from TestMain after m.Run (Main does).
func ClosePrivate() {
	if private != nil {
		private.kill()
		os.RemoveAll(private.dir)
	}
}

func startPrivate() (*Private, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is required (./scripts/test installs it): %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "aero2-private-redis-")
	if err != nil {
		return nil, err
	}
	p := &Private{Addr: addr, bin: bin, dir: dir}
	if err := p.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// start runs redis-server on p.Addr and waits until it answers; p.mu is
// held or p is not shared yet.
func (p *Private) start() error {
	_, port, _ := net.SplitHostPort(p.Addr)
	// Every write is in the append-only file before Redis answers it, so
	// that a server killed and started again has lost nothing: a test
	// can stop Redis in the middle of a flow and then finish the flow.
	cmd := exec.Command(p.bin, "--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", p.dir, "--logfile", "")
	// If the test binary dies without cleaning up, so does its Redis.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(p.Addr) {
			p.cmd, p.paused = cmd, false
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("redis-server did not start on %s", p.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping reports whether Redis at addr answers PING: not only listening,
// but done loading its append-only file (until then it answers LOADING).
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadFull(c, buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func (p *Private) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *Private) killLocked() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill() // SIGKILL ends a stopped process too
	p.cmd.Wait()
	p.cmd, p.paused = nil, false
}

func (p *Private) ensureRunning() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			return err
		}
		p.paused = false
	}
	if p.cmd == nil {
		return p.start()
	}
	return nil
}

// Config returns store settings for the private server with a key prefix
// of the test's own and short timeouts (PrivateDialTimeout,
// PrivateIOTimeout).
func (p *Private) Config(t testing.TB) config.Redis {
	return config.Redis{
		Addrs:        []string{p.Addr},
		KeyPrefix:    "aero2test-" + rand.Text()[:12],
		DialTimeout:  PrivateDialTimeout,
		ReadTimeout:  PrivateIOTimeout,
		WriteTimeout: PrivateIOTimeout,
	}
}

// Open opens a store on the private server (see Config), closed when the
// test ends.
func (p *Private) Open(t testing.TB) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), p.Config(t))
	if err != nil {
		t.Fatalf("open a store on the private Redis: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Stop kills the server (as a crash would: SIGKILL). Start brings it back
// with every write it had answered.
func (p *Private) Stop(t testing.TB) {
	t.Helper()
	p.kill()
}

// Start starts a stopped server again on the same address.
func (p *Private) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
}

// Stall stops the server with SIGSTOP: connections are accepted by the
// kernel, and nothing is ever answered, as with a Redis that hangs or a
// network that drops packets.
func (p *Private) Stall(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		t.Fatal("Stall: the private Redis is not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.paused = true
}

// Resume continues a stalled server (SIGCONT).
func (p *Private) Resume(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.paused = false
}
