package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Private is a PostgreSQL cluster of the test's own, on a free loopback
// port, for the tests that stop and restart the database under load: the
// shared one at DSN() must never be. It is removed when the test ends.
type Private struct {
	// DSN connects to the cluster's postgres database.
	DSN string

	bin, dir string
	port     int
	cred     *syscall.Credential
	mu       sync.Mutex
	running  bool
}

// binDir is where initdb and pg_ctl are: $AERO2_TEST_POSTGRES_BIN (set by
// ./scripts/test), or the newest /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if d := os.Getenv("AERO2_TEST_POSTGRES_BIN"); d != "" {
		return d, nil
	}
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(ds, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[j])))
		return a > b
	})
	for _, d := range ds {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL binaries (initdb, pg_ctl): run ./scripts/test, which installs them, or set AERO2_TEST_POSTGRES_BIN")
}

// NewPrivate initdbs and starts a private cluster. It fails the test,
// loudly, when the binaries are missing. PostgreSQL refuses to run as
// root: as root, the cluster runs as the postgres user.
func NewPrivate(t testing.TB) *Private {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "aero2-pgprivate-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Private{bin: bin, dir: dir}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.running {
			_ = p.pgctl("stop", "-m", "immediate")
		}
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and there is no postgres user to run PostgreSQL as (./scripts/test installs Debian's postgresql): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if out, err := p.command(filepath.Join(bin, "initdb"), "-D", p.data(), "-U", "aero2", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.DSN = fmt.Sprintf("postgres://aero2@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	p.Start(t)
	return p
}

func (p *Private) data() string { return filepath.Join(p.dir, "data") }

func (p *Private) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *Private) pgctl(args ...string) error {
	args = append([]string{"-D", p.data(), "-w", "-t", "60"}, args...)
	out, err := p.command(filepath.Join(p.bin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

// Start starts the cluster (again) on its port and waits until it accepts
// connections.
func (p *Private) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", p.port, p.dir)
	if err := p.pgctl("-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		t.Fatalf("%v\n%s", err, log)
	}
	p.running = true
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, p.DSN)
		cancel()
		if err == nil {
			c.Close(context.Background())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("private PostgreSQL does not accept connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the cluster at once, as a crash would (pg_ctl -m immediate):
// open connections break, new ones are refused.
func (p *Private) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	if err := p.pgctl("stop", "-m", "immediate"); err != nil {
		t.Fatal(err)
	}
	p.running = false
}

// Port is the cluster's TCP port.
func (p *Private) Port() int { return p.port }
