package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// TestHealthcheck: exit 0 when /readyz answers 200 (a real Aero2, found
// through --url or through the configuration's listen address), and
// non-zero with one line saying why when it answers otherwise or nothing
// answers.
func TestHealthcheck(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	if code, out, errs := runCmd(t, "healthcheck", "--url", in.Addr+"/readyz"); code != 0 || out != "" || errs != "" {
		t.Fatalf("ready server: %d %q %q", code, out, errs)
	}
	// From the configuration: listen on every address means loopback.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(in.Addr, "http://"))
	p := writeConfig(t, strings.Replace(good, `server: {public_url: "http://localhost:8080"}`, `server: {public_url: "http://localhost:8080", listen: "0.0.0.0:`+port+`"}`, 1))
	if code, _, errs := runCmd(t, "healthcheck", "--config", p); code != 0 {
		t.Fatalf("healthcheck --config (listen 0.0.0.0:%s): %d %q", port, code, errs)
	}
	t.Setenv("AERO2_CONFIG", p)
	if code, _, errs := runCmd(t, "healthcheck"); code != 0 {
		t.Fatalf("healthcheck with AERO2_CONFIG: %d %q", code, errs)
	}

	// Not ready: the store is down (what /readyz answers then).
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("store unavailable\n"))
	}))
	defer down.Close()
	code, _, errs := runCmd(t, "healthcheck", "--url", down.URL+"/readyz")
	if code != 1 || errs != "aero2 healthcheck: unhealthy: GET "+down.URL+"/readyz: 503 Service Unavailable: store unavailable\n" {
		t.Fatalf("503: %d %q", code, errs)
	}
	// A redirect is not ready either.
	code, _, errs = runCmd(t, "healthcheck", "--url", down.URL+"/elsewhere")
	if code != 1 || !strings.Contains(errs, "404") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("404: %d %q", code, errs)
	}
	// Nothing listening.
	code, _, errs = runCmd(t, "healthcheck", "--url", "http://"+servertest.RefusingAddr(t)+"/readyz")
	if code != 1 || !strings.Contains(errs, "connection refused") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("nothing listening: %d %q", code, errs)
	}
	// A configuration that does not load is unhealthy, in one line.
	code, _, errs = runCmd(t, "healthcheck", "--config", writeConfig(t, "sever: {}\n"))
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "aero2 healthcheck: unhealthy:") {
		t.Fatalf("broken config: %d %q", code, errs)
	}
	// No configuration and no URL is a usage error.
	os.Unsetenv("AERO2_CONFIG")
	if code, _, errs := runCmd(t, "healthcheck"); code != 2 || !strings.Contains(errs, "--url") {
		t.Fatalf("no configuration: %d %q", code, errs)
	}
}

// TestDockerfileHealthcheck: the image's HEALTHCHECK runs this command,
// from the binary its ENTRYPOINT runs, in exec form (the image has no
// shell to run a string).
func TestDockerfileHealthcheck(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var entry, check []string
	for _, line := range strings.Split(string(data), "\n") {
		switch word, rest, _ := strings.Cut(strings.TrimSpace(line), " "); word {
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK without CMD: %s", rest)
			}
			if err := json.Unmarshal([]byte(cmd), &check); err != nil {
				t.Fatalf("HEALTHCHECK CMD must be exec form (JSON): %s: %v", cmd, err)
			}
		}
	}
	if len(entry) != 1 || len(check) != 2 || check[0] != entry[0] || check[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK %q, ENTRYPOINT %q: want [%q healthcheck]", check, entry, entry)
	}
}
