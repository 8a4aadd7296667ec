package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/reqlog"
)

type counter struct{ n int }

func (c *counter) Log(context.Context, audit.Event) { c.n++ }

// TestLogLine: one JSON line per event, its non-empty fields, and the
// request's ID and client address from the context; a nil Logger and a
// Tee of nils record nothing and do not panic.
func TestLogLine(t *testing.T) {
	var buf bytes.Buffer
	c := &counter{}
	l := audit.Tee(nil, audit.New(&buf), c)
	var n reqlog.Note
	n.Start("req-1", "192.0.2.7")
	ctx, cancel := context.WithCancel(reqlog.With(context.Background(), &n))
	cancel() // a request that has gone away still gets its event
	audit.Log(ctx, l, audit.Event{Type: audit.TokenRefused, App: "default", Client: "web", Reason: "invalid_grant"})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	want := map[string]any{"msg": "audit", "level": "INFO", "event": "token.refused", "app": "default", "client_id": "web",
		"reason": "invalid_grant", "request_id": "req-1", "client_addr": "192.0.2.7"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"user", "idp", "route", "session", "grant_type", "actor", "actor_host", "action", "target", "outcome"} {
		if _, ok := got[k]; ok {
			t.Errorf("empty field %s written", k)
		}
	}
	if c.n != 1 {
		t.Errorf("the tee's second logger got %d events", c.n)
	}
	audit.Log(context.Background(), nil, audit.Event{Type: audit.AdminAction})
	if audit.Tee(nil, nil) != nil {
		t.Error("a tee of nothing is not nil")
	}
	buf.Reset()
	audit.Log(context.Background(), l, audit.Event{Type: audit.AdminAction, Actor: "root", ActorHost: "ops-1", Action: "users.disable", Target: "u1", Outcome: audit.Succeeded})
	got = nil
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || got["action"] != "users.disable" || got["actor"] != "root" || got["target"] != "u1" ||
		got["actor_host"] != "ops-1" || got["outcome"] != "succeeded" {
		t.Fatalf("admin action: %q", buf.String())
	}
	if _, ok := got["request_id"]; ok {
		t.Error("request_id outside a request")
	}
}

// TestOpen: log.audit's values; a file is appended to, mode 0600.
func TestOpen(t *testing.T) {
	for _, d := range []string{"", "stdout", "stderr"} {
		l, closeFn, err := audit.Open(d)
		if err != nil || closeFn() != nil || (d == "") != (l == nil) {
			t.Fatalf("Open(%q): %v %v", d, l, err)
		}
	}
	p := t.TempDir() + "/audit.jsonl"
	for i := range 2 {
		l, closeFn, err := audit.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		audit.Log(context.Background(), l, audit.Event{Type: audit.ConfigReloaded, Reason: "ok"})
		closeFn()
		data, _ := os.ReadFile(p)
		if n := bytes.Count(data, []byte("config.reloaded")); n != i+1 {
			t.Fatalf("after %d opens the file has %d events", i+1, n)
		}
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if _, _, err := audit.Open(t.TempDir() + "/no/such/dir/a.jsonl"); err == nil {
		t.Error("a file that cannot be created opened")
	}
}
