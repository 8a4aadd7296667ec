// Package servlettest runs a real servlet container for tests: Apache
// Tomcat, from Debian's libtomcat10-embed-java, with an admin servlet on
// /admin/* and a default servlet on / (PathServlets.java). Servlet
// containers read paths their own way (";parameters" stripped from every
// segment before dot segments are resolved), and Aero2 must not let that
// reading reach a route the proxy did not check.
//
// Tomcat is started once per test binary and stops when the binary exits:
// it watches its standard input, which only this process holds.
package servlettest

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed PathServlets.java
var source []byte

// DefaultJar is where Debian's libtomcat10-embed-java puts Tomcat;
// AERO2_TOMCAT_JAR overrides it.
const DefaultJar = "/usr/share/java/tomcat10-embed-core.jar"

// Tomcat is a running Tomcat.
type Tomcat struct {
	// URL is http://127.0.0.1:<port>.
	URL string
	// stdin is held open for Tomcat's lifetime: when this process exits,
	// it closes and Tomcat stops.
	stdin *os.File
}

var (
	once     sync.Once
	shared   *Tomcat
	startErr error
)

// Start returns the test binary's Tomcat, starting it on first use (a few
// seconds). It fails the test, loudly, when Java or Tomcat is missing:
// ./scripts/test installs both.
func Start(t testing.TB) *Tomcat {
	t.Helper()
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		t.Fatalf("servlettest: cannot start Tomcat: %v\n(install libtomcat10-embed-java and a JDK, e.g. default-jdk-headless; ./scripts/test does)", startErr)
	}
	return shared
}

func start() (*Tomcat, error) {
	jar := os.Getenv("AERO2_TOMCAT_JAR")
	if jar == "" {
		jar = DefaultJar
	}
	if _, err := os.Stat(jar); err != nil {
		return nil, err
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "aero2-tomcat-")
	if err != nil {
		return nil, err
	}
	src := filepath.Join(dir, "PathServlets.java")
	if err := os.WriteFile(src, source, 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(javac, "-nowarn", "-cp", jar, "-d", dir, src).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("javac: %v\n%s", err, out)
	}
	cmd := exec.Command(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", jar+string(os.PathListSeparator)+dir, "PathServlets", dir)
	// Tomcat's own log goes to a file in its base directory.
	logFile, err := os.Create(filepath.Join(dir, "tomcat.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = stdinR
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stdinR.Close()
	go cmd.Wait() // reaps it if it dies early
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
				break
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if ok {
			return &Tomcat{URL: "http://127.0.0.1:" + p, stdin: stdinW}, nil
		}
	case <-time.After(2 * time.Minute):
	}
	stdinW.Close()
	cmd.Process.Kill()
	log, _ := os.ReadFile(logFile.Name())
	os.RemoveAll(dir)
	return nil, errors.New("Tomcat did not start:\n" + string(log))
}
