package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeReloads runs the built binary, as an operator would: SIGHUP
// reloads the file (a route appears), a broken file is refused and
// logged with its line:col while the running configuration keeps
// serving, server.watch_config reloads on a write without a signal, and
// SIGTERM still stops it cleanly.
func TestServeReloads(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "aero2")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the server binds it again; nothing else here takes ports
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream "+r.URL.Path) })}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(uln)
	t.Cleanup(func() { up.Close() })

	base := `insecure_dev: true
server:
  listen: "` + addr + `"
  public_url: "http://` + addr + `"
  watch_config: WATCH
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
identity_providers:
  - {id: dev, type: dev, config: {users: [{username: alice}]}}
routes:
  - {path: /one, upstream: "http://` + uln.Addr().String() + `", policy: {public: true}}
`
	route := func(p string) string {
		return "  - {path: " + p + ", upstream: \"http://" + uln.Addr().String() + "\", policy: {public: true}}\n"
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "aero2.yaml")
	write := func(body string) {
		t.Helper()
		// As editors and ConfigMaps do: a new file renamed over the old.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(base, "WATCH", "false", 1))

	cmd := exec.Command(bin, "serve", "--config", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	logged := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	get := func(path string) int {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15s; logs:\n%s", what, logged())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("the server answers", func() bool { return get("/one") == http.StatusOK })
	if st := get("/two"); st != http.StatusNotFound {
		t.Fatalf("/two before the reload: %d", st)
	}

	write(strings.Replace(base, "WATCH", "false", 1) + route("/two"))
	cmd.Process.Signal(syscall.SIGHUP)
	eventually("SIGHUP adds /two", func() bool { return get("/two") == http.StatusOK })

	write(strings.Replace(base, "WATCH", "false", 1) + "  - {path: /three, upstrem: x}\n")
	cmd.Process.Signal(syscall.SIGHUP)
	eventually("the broken file is refused", func() bool { return strings.Contains(logged(), "config reload refused") })
	if l := logged(); !strings.Contains(l, file+`:13:20: routes[1].upstrem: unknown key \"upstrem\"`) {
		t.Errorf("the refusal lacks the problem at its line:col:\n%s", l)
	}
	if get("/one") != http.StatusOK || get("/two") != http.StatusOK {
		t.Error("a refused reload changed the running routes")
	}

	// watch_config itself needs a restart: turning it on in a reload is
	// reported, not applied; the file is still reloaded by SIGHUP.
	write(strings.Replace(base, "WATCH", "true", 1))
	cmd.Process.Signal(syscall.SIGHUP)
	eventually("SIGHUP removes /two", func() bool { return get("/two") == http.StatusNotFound })
	if l := logged(); !strings.Contains(l, "server.watch_config: changed: needs a restart") {
		t.Errorf("turning watch_config on at runtime is not reported:\n%s", l)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, logged())
	}

	// Started with watch_config: a write is enough.
	cmd = exec.Command(bin, "serve", "--config", file)
	logs.Reset()
	stderr, _ = cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	eventually("the watching server answers", func() bool { return get("/one") == http.StatusOK })
	write(strings.Replace(base, "WATCH", "true", 1) + route("/four"))
	eventually("a write adds /four", func() bool { return get("/four") == http.StatusOK })
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, logged())
	}
}
