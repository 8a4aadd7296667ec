// Package forwardauth_test runs the forward-auth examples as written
// (examples/forward-auth: nginx.conf, Caddyfile, aero2.yaml) with the real
// servers: Debian's nginx and Caddy in front of an upstream on loopback,
// asking a whole Aero2 (`aero2 serve`'s server.Run, with the example's dev
// identity provider). Only addresses and file paths are substituted, and
// each substitution must find its text in the example, so an edit to an
// example is what the tests run. ./scripts/test installs nginx, its
// headers-more module and Caddy; without them the package fails, never
// skips.
package forwardauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
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

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
)

// The example's names: the app's host and the issuer's (public_url).
const (
	appHost  = "app.example.com"
	authHost = "auth.example.com"
)

// frontProxy is nginx or Caddy, running one of the examples.
type frontProxy struct {
	name string
	port int         // where it serves https (the examples' 443)
	tls  *tls.Config // trusts its certificate
	logs []string    // its log files, shown when a test fails
	cmd  *exec.Cmd
	// done is closed when cmd has ended, with its error in waitErr.
	done    chan struct{}
	waitErr error
}

// fixture is what TestMain starts once for the package.
var fx struct {
	dir      string
	aero2Log string
	up       *upstream
	proxies  []*frontProxy
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/forwardauth:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	// Fail loudly: these tests exist to run the real servers.
	if nginxBin, err = lookPath("nginx"); err != nil {
		return 1, err
	}
	if caddyBin, err = lookPath("caddy"); err != nil {
		return 1, err
	}
	if fx.dir, err = os.MkdirTemp("", "aero2-forwardauth-"); err != nil {
		return 1, err
	}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		if code == 0 {
			os.RemoveAll(fx.dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e/forwardauth: logs kept in", fx.dir)
		}
	}()
	up, err := startUpstream()
	if err != nil {
		return 1, err
	}
	stops = append(stops, up.close)
	fx.up = up
	aero2, stop, err := startAero2(up.addr)
	if err != nil {
		return 1, err
	}
	stops = append(stops, stop)
	ng, err := startNginx(aero2, up.addr)
	if ng != nil {
		stops = append(stops, ng.stop)
	}
	if err != nil {
		return 1, err
	}
	cd, err := startCaddy(aero2, up.addr)
	if cd != nil {
		stops = append(stops, cd.stop)
	}
	if err != nil {
		return 1, err
	}
	fx.proxies = []*frontProxy{ng, cd}
	return m.Run(), nil
}

// The servers' binaries.
var nginxBin, caddyBin string

// lookPath finds a server's binary, also in /usr/sbin (Debian's nginx),
// which a user's PATH may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p := "/usr/sbin/" + name; isExecutable(p) {
		return p, nil
	}
	return "", fmt.Errorf("%s is required (./scripts/test installs it from Debian's packages) and is not installed", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// example reads a file of examples/forward-auth and substitutes each pair
// of replace (text in the file, its stand-in); text the file does not
// contain is an error, so the tests cannot drift from the example.
func example(file string, replace ...string) (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "forward-auth", file))
	if err != nil {
		return "", err
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			return "", fmt.Errorf("examples/forward-auth/%s does not contain %q", file, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s, nil
}

// freePort returns a loopback port nobody listens on (for servers that
// cannot be handed a listener).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startAero2 runs the example's aero2.yaml as `aero2 serve` does, on a
// free port instead of 127.0.0.1:4180, and returns its address.
func startAero2(upAddr string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	text, err := example("aero2.yaml", "127.0.0.1:4180", addr)
	if err != nil {
		return "", nil, err
	}
	cfg, err := config.Parse("examples/forward-auth/aero2.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		return "", nil, fmt.Errorf("examples/forward-auth/aero2.yaml: %w", err)
	}
	fx.aero2Log = filepath.Join(fx.dir, "aero2.log")
	lf, err := os.Create(fx.aero2Log)
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = server.Run(ctx, cfg, log)
		close(done)
	}()
	stop := func() {
		cancel()
		<-done
		lf.Close()
	}
	if err := awaitTCP(addr, done, &runErr); err != nil {
		stop()
		return "", nil, fmt.Errorf("Aero2: %w (see %s)", err, fx.aero2Log)
	}
	return addr, stop, nil
}

// awaitTCP waits until something accepts connections at addr, or done
// is closed: the server ended, with *err.
func awaitTCP(addr string, done <-chan struct{}, err *error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("exited: %v", *err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 30s", addr)
}

// startNginx runs examples/forward-auth/nginx.conf, included in the http
// block of a minimal nginx.conf, as the example says to.
func startNginx(aero2, upAddr string) (*frontProxy, error) {
	const module = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"
	if _, err := os.Stat(module); err != nil {
		return nil, fmt.Errorf("nginx's headers-more module is required (Debian: libnginx-mod-http-headers-more-filter; ./scripts/test installs it): %w", err)
	}
	dir := filepath.Join(fx.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	certFile, keyFile, roots, err := writeCert(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	site, err := example("nginx.conf",
		"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", port),
		"/etc/ssl/certs/example.com.pem", certFile,
		"/etc/ssl/private/example.com.key", keyFile,
		"127.0.0.1:4180", aero2,
		"127.0.0.1:3000", upAddr)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644); err != nil {
		return nil, err
	}
	errorLog, accessLog := filepath.Join(dir, "error.log"), filepath.Join(dir, "access.log")
	main := fmt.Sprintf(`load_module %s;
daemon off;
pid %s/nginx.pid;
error_log %s info;
events {}
http {
    access_log %s;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/site.conf;
}
`, module, dir, errorLog, accessLog)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		return nil, err
	}
	p := &frontProxy{name: "nginx", port: port, tls: &tls.Config{RootCAs: roots}, logs: []string{errorLog, accessLog}}
	// -e: errors before error_log is read (nginx 1.19.5+).
	if err := p.start(dir, nil, nginxBin, "-p", dir, "-c", conf, "-e", errorLog); err != nil {
		return p, err
	}
	return p, nil
}

// startCaddy runs examples/forward-auth/Caddyfile after a global options
// block that moves its ports and storage into the test's directory and
// has it issue its own certificates (local_certs) instead of asking an
// ACME CA.
func startCaddy(aero2, upAddr string) (*frontProxy, error) {
	dir := filepath.Join(fx.dir, "caddy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	site, err := example("Caddyfile", "127.0.0.1:4180", aero2, "127.0.0.1:3000", upAddr)
	if err != nil {
		return nil, err
	}
	storage := filepath.Join(dir, "storage")
	global := fmt.Sprintf(`{
	admin off
	local_certs
	skip_install_trust
	auto_https disable_redirects
	http_port %d
	https_port %d
	storage file_system {
		root %s
	}
}

`, httpPort, port, storage)
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(global+site), 0o644); err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "caddy.log")
	p := &frontProxy{name: "caddy", port: port, logs: []string{logFile}}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	if err := p.start(dir, env, caddyBin, "run", "--config", conf, "--adapter", "caddyfile"); err != nil {
		return p, err
	}
	// Caddy's own CA, created at start: the test's clients trust it.
	root := filepath.Join(storage, "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(root)
		if err == nil {
			roots := x509.NewCertPool()
			if roots.AppendCertsFromPEM(b) {
				p.tls = &tls.Config{RootCAs: roots}
				break
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("caddy wrote no root certificate at %s (see %s)", root, logFile)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, p.awaitHTTPS()
}

// start runs a front proxy, its output in the first log file (Caddy's
// only one, nginx's error log), and waits for its https port.
func (p *frontProxy) start(dir string, env []string, bin string, args ...string) error {
	out, err := os.OpenFile(filepath.Join(dir, p.name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.logs = append(p.logs, out.Name())
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	// If the test binary dies, so does the server.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	if err := awaitTCP(fmt.Sprintf("127.0.0.1:%d", p.port), p.done, &p.waitErr); err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, err, p.tail())
	}
	if p.tls != nil {
		return p.awaitHTTPS()
	}
	return nil
}

// awaitHTTPS waits until the proxy answers https for the issuer's host
// (Aero2's health check through it).
func (p *frontProxy) awaitHTTPS() error {
	c := &http.Client{Transport: p.transport(), Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		res, err := c.Get("https://" + authHost + "/healthz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer https://%s/healthz: %v\n%s", p.name, authHost, last, p.tail())
}

func (p *frontProxy) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM) // both: fast shutdown
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of every log of the proxy and of Aero2's, for failures.
func (p *frontProxy) tail() string {
	var b strings.Builder
	for _, f := range append(append([]string{}, p.logs...), fx.aero2Log) {
		data, _ := os.ReadFile(f)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, data)
	}
	return b.String()
}

// transport reaches the example's hosts, as DNS would, at the proxy's
// https port, trusting its certificate.
func (p *frontProxy) transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = p.tls.Clone()
	var d net.Dialer
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch addr {
		case appHost + ":443", authHost + ":443":
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", p.port))
		}
		return nil, fmt.Errorf("the test reaches only %s and %s, not %s", appHost, authHost, addr)
	}
	return t
}

// writeCert writes a certificate for both hosts, signed by a CA of the
// test's own, and returns the pool that trusts it.
func writeCert(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aero2 forward-auth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: appHost},
		DNSNames: []string{appHost, authHost}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "example.com.pem"), filepath.Join(dir, "example.com.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return certFile, keyFile, roots, nil
}

// upstream is the app behind the front proxies: it answers "upstream
// <request URI>" and keeps what each request carried, under the test's
// X-Test-Id.
type upstream struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	seen map[string]*http.Request
	all  []*http.Request
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String(), seen: map[string]*http.Request{}}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		rc := r.Clone(context.Background())
		u.all = append(u.all, rc)
		if id := r.Header.Get("X-Test-Id"); id != "" {
			u.seen[id] = rc
		}
		u.mu.Unlock()
		io.WriteString(w, "upstream "+r.RequestURI)
	}), ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *upstream) close() { u.srv.Close() }

// got is the request the upstream received with X-Test-Id id, or nil.
func (u *upstream) got(id string) *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// every is every request the upstream has received.
func (u *upstream) every() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request{}, u.all...)
}
