// Package compose holds the docker compose example; this test is all
// there is of it in Go.
package compose

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// composeFile is the part of the compose specification the example uses.
// It is decoded strictly, so that a misspelt key fails here rather than
// being ignored by docker compose.
type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
}

type service struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string `yaml:"command"`
	Ports       []string `yaml:"ports"`
	Expose      []string `yaml:"expose"`
	Volumes     []string `yaml:"volumes"`
	Environment []string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

// dockerfile is what the test reads of a Dockerfile.
type dockerfile struct {
	env        map[string]string
	expose     []string
	entrypoint []string
	build      string // the package `go build` builds
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{env: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		word, rest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch word {
		case "ENV":
			k, v, _ := strings.Cut(rest, "=")
			d.env[k] = v
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT %s: %v", path, rest, err)
			}
		case "RUN":
			if m := regexp.MustCompile(`go build .* (\./\S+)$`).FindStringSubmatch(rest); m != nil {
				d.build = m[1]
			}
		}
	}
	return d
}

// TestComposeExample: no Docker engine runs here, so this checks what can
// be checked without one. compose.yaml parses; its services are the three
// it should be; the configuration it mounts is where the image reads it
// and passes `aero2 check`; the names and ports the configuration uses
// are the services' (Redis, the demo app, the published port); the demo
// image's entry point is a command that serves the demo app. Then the same
// configuration runs, in process, against the real Redis and the demo app
// built from the same package, each at its address here instead of its
// service name, and a browser signs in through the proxy to the demo app.
func TestComposeExample(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	aero2, redis, demo := c.Services["aero2"], c.Services["redis"], c.Services["demo"]
	if len(c.Services) != 3 || aero2 == nil || redis == nil || demo == nil {
		t.Fatalf("services = %v, want aero2, redis and demo", c.Services)
	}

	// Aero2: the repository's image, with aero2.yaml where it reads it.
	image := readDockerfile(t, filepath.Join(aero2.Build.Context, "Dockerfile"))
	want := "./aero2.yaml:" + image.env["AERO2_CONFIG"] + ":ro"
	if image.env["AERO2_CONFIG"] == "" || len(aero2.Volumes) != 1 || aero2.Volumes[0] != want {
		t.Errorf("aero2 volumes = %q, want [%q] (the image's AERO2_CONFIG)", aero2.Volumes, want)
	}
	cfg, err := config.Load("aero2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Check(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range aero2.Environment {
		if !strings.Contains(string(mustRead(t, "aero2.yaml")), "${"+name+":-") {
			t.Errorf("aero2 passes %s on, which aero2.yaml does not read (with a default)", name)
		}
	}

	// Its port: published as the public URL's, listened on in the
	// container on every interface (a container's loopback is its own).
	host, port, _ := net.SplitHostPort(cfg.Server.Listen)
	pub, _ := url.Parse(cfg.Server.PublicURL)
	if host != "" && host != "0.0.0.0" {
		t.Errorf("server.listen %q: inside a container, listen on every interface (\":%s\")", cfg.Server.Listen, port)
	}
	if len(aero2.Ports) != 1 || aero2.Ports[0] != pub.Port()+":"+port || !slices.Contains(image.expose, port) {
		t.Errorf("aero2 ports %q, image EXPOSE %q: want %q (public_url's port : listen's port)", aero2.Ports, image.expose, pub.Port()+":"+port)
	}
	if pub.Hostname() != "localhost" {
		t.Errorf("public_url %q: the browser beside docker reaches the published port at localhost", cfg.Server.PublicURL)
	}

	// Redis: the service the store names, started before Aero2, which
	// refuses to start without its store.
	if cfg.Store.Type != "redis" || len(cfg.Store.Redis.Addrs) != 1 || cfg.Store.Redis.Addrs[0] != "redis:6379" {
		t.Errorf("store = %+v, want the redis service at redis:6379", cfg.Store)
	}
	if !strings.HasPrefix(redis.Image, "redis:") || len(redis.Healthcheck.Test) == 0 || aero2.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("redis = %+v, aero2 depends_on = %v: want a healthy redis before aero2", redis, aero2.DependsOn)
	}

	// The demo app: the route's upstream, at the port its image serves.
	routes := cfg.Apps()[0].ProxyRoutes()
	if len(routes) != 1 {
		t.Fatalf("routes = %+v", routes)
	}
	up, _ := url.Parse(routes[0].Upstream)
	demoImage := readDockerfile(t, filepath.Join(demo.Build.Context, demo.Build.Dockerfile))
	ep := demoImage.entrypoint
	if up.Hostname() != "demo" || len(ep) < 4 || ep[len(ep)-2] != "--demo" || ep[len(ep)-1] != ":"+up.Port() ||
		!slices.Contains(demoImage.expose, up.Port()) || !slices.Contains(demo.Expose, up.Port()) {
		t.Errorf("upstream %s; demo image ENTRYPOINT %q, EXPOSE %q; demo expose %q: want the demo service serving at :%s",
			routes[0].Upstream, ep, demoImage.expose, demo.Expose, up.Port())
	}
	if _, ok := aero2.DependsOn["demo"]; !ok {
		t.Errorf("aero2 does not depend on demo")
	}
	if demoImage.build != "./examples/quickstart" {
		t.Fatalf("the demo image builds %q, want ./examples/quickstart", demoImage.build)
	}

	// The demo image's command, built from the same package and run with
	// the same arguments, on a loopback port instead of :8081.
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, "../quickstart").CombinedOutput(); err != nil {
		t.Fatalf("go build ../quickstart: %v\n%s", err, out)
	}
	args := append(append([]string(nil), ep[1:len(ep)-1]...), "127.0.0.1:0")
	demoAddr := startDemo(t, bin, args)

	// Aero2 with the same configuration: the services' names replaced by
	// where they run here, the public URL by the test server's.
	rc := redistest.Config(t)
	tmpl := strings.NewReplacer(
		cfg.Server.PublicURL, "{{.URL}}",
		`"redis:6379"`, `"`+redistest.Addr()+`"`,
		routes[0].Upstream, "http://"+demoAddr,
	).Replace(string(mustRead(t, "aero2.yaml")))
	tmpl = strings.Replace(tmpl, "    addrs:", "    key_prefix: "+rc.KeyPrefix+"\n    addrs:", 1)
	in := servertest.Start(t, tmpl, nil)
	b := servertest.NewBrowser(t)
	p := b.SignInDev(in.URL+"/demo", "alice")
	if p.Status != 200 || !strings.Contains(p.Body, "<h1>Demo app</h1>") || !strings.Contains(p.Body, "alice@example.com") {
		t.Fatalf("signed in, the demo app answered %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
}

// startDemo runs the demo binary and returns the address it listens on,
// which it prints.
func startDemo(t *testing.T, bin string, args []string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "quickstart: demo app listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s %q did not say where it listens", bin, args)
		return ""
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
