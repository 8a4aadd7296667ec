package servertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// NodeDir is the folder of the Node.js clients the tests drive
// (testdata/node: openid-client, pinned by its package-lock.json).
func NodeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "node")
}

// NodeRun is one run of testdata/node/client.mjs: an independent,
// OpenID-certified client (openid-client) doing one command against a
// running Aero2. It prints one JSON object a line; the last is the result
// or {"error": …}.
type NodeRun struct {
	t      testing.TB
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr *bytes.Buffer
	cancel context.CancelFunc
}

// Node starts client.mjs with input (marshalled to JSON on its stdin).
// It fails the test when Node.js or the installed clients are missing:
// ./scripts/test installs both.
func Node(t testing.TB, input any) *NodeRun {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("Node.js is required for the openid-client tests (./scripts/test installs it): node not found")
	}
	dir := NodeDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client", "package.json")); err != nil {
		t.Fatalf("openid-client is not installed: run `npm ci` in %s (./scripts/test does)", dir)
	}
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting node: %v", err)
	}
	r := &NodeRun{t: t, cmd: cmd, lines: bufio.NewScanner(stdout), stderr: &stderr, cancel: cancel}
	r.lines.Buffer(make([]byte, 64<<10), 4<<20)
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return r
}

// Next returns the next line the client printed.
func (r *NodeRun) Next() map[string]any {
	r.t.Helper()
	if !r.lines.Scan() {
		r.cancel()
		_ = r.cmd.Wait()
		r.t.Fatalf("node client.mjs ended without output: %v\n%s", r.lines.Err(), r.stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(r.lines.Bytes(), &m); err != nil {
		r.t.Fatalf("node client.mjs printed %q: %v", r.lines.Bytes(), err)
	}
	return m
}

// RunNode runs one command and returns its result (the only line).
func RunNode(t testing.TB, input any) map[string]any {
	t.Helper()
	return Node(t, input).Next()
}
