package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aero2/aero2/config"
)

// defaultHealthTimeout bounds the whole check: /readyz answers within
// the 2 seconds it gives the store, or says 503.
const defaultHealthTimeout = 5 * time.Second

// runHealthcheck answers `aero2 healthcheck`: 0 when /readyz answers 200,
// 1 with a one-line reason otherwise. It is what the container image's
// HEALTHCHECK runs: distroless has no shell, curl or wget.
func runHealthcheck(ctx context.Context, c *invocation) int {
	u := c.flags.healthURL
	var tlsConf *tls.Config
	if u == "" {
		if c.flags.healthConfig == "" {
			fmt.Fprintln(c.stderr, "aero2 healthcheck: no configuration: pass --config FILE, set AERO2_CONFIG, or pass --url")
			return 2
		}
		cfg, err := config.Load(c.flags.healthConfig)
		if err != nil {
			fmt.Fprintln(c.stderr, "aero2 healthcheck: unhealthy: the configuration does not load:", firstLine(err))
			return 1
		}
		if u, tlsConf, err = readyURL(cfg); err != nil {
			fmt.Fprintln(c.stderr, "aero2 healthcheck: unhealthy:", err)
			return 1
		}
	}
	if err := checkReady(ctx, u, tlsConf, c.flags.timeout); err != nil {
		fmt.Fprintln(c.stderr, "aero2 healthcheck: unhealthy:", err)
		return 1
	}
	return 0
}

// readyURL is where the configuration's own listener answers /readyz: on
// loopback when it listens on every address, over https with its own
// certificate (as the root, for the public host name) when it serves TLS.
func readyURL(cfg *config.Config) (string, *tls.Config, error) {
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		return "", nil, fmt.Errorf("server.listen %q: %w", cfg.Server.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	var tc *tls.Config
	if cfg.Server.TLS.CertFile != "" {
		scheme = "https"
		pem, err := os.ReadFile(cfg.Server.TLS.CertFile)
		if err != nil {
			return "", nil, fmt.Errorf("server.tls.cert_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, errors.New("server.tls.cert_file: no PEM certificate")
		}
		// The certificate names the public host, not loopback.
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if pu, err := url.Parse(cfg.Server.PublicURL); err == nil && pu.Hostname() != "" {
			tc.ServerName = pu.Hostname()
		}
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/readyz"}).String(), tc, nil
}

// checkReady GETs u and wants 200.
func checkReady(ctx context.Context, u string, tc *tls.Config, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	client := &http.Client{
		// Never through an HTTP_PROXY of the environment, and never
		// elsewhere: a redirect is not ready.
		Transport:     &http.Transport{Proxy: nil, TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		msg := strings.TrimSpace(string(body))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			return fmt.Errorf("GET %s: %s: %s", u, res.Status, msg)
		}
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return nil
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more: run aero2 check)"
	}
	return s
}
