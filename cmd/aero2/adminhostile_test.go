package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// The admin commands take identifiers from an operator's shell, which may
// have pasted them from anywhere, and print values that identity
// providers chose. Neither may forge a line of a table or of the audit
// log, reach the store when no store could hold it, or make a failure
// print more than one line (never a stack trace, never a password).

// hostileIDs are identifiers refused before the store is asked.
var hostileIDs = map[string]string{
	"newline":      "u1\nAPP      ID  forged",
	"carriage":     "u1\rforged",
	"escape":       "u1\x1b[2J",
	"nul":          "u1\x00",
	"tab":          "u1\tforged",
	"bidi":         "u1\u202edesrever",
	"not utf-8":    "u1\xff\xfe",
	"oversized":    strings.Repeat("a", maxIDLength+1),
	"one megabyte": strings.Repeat("b", 1<<20),
}

func TestAdminRefusesHostileIdentifiers(t *testing.T) {
	e := startAdmin(t)
	for name, id := range hostileIDs {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{
				{"users", "show", "--", id},
				{"users", "disable", "--", id},
				{"users", "enable", "--", id},
				{"users", "delete", "--", id},
				{"sessions", "revoke", "--", id},
				{"sessions", "revoke", "--user", id},
				{"sessions", "list", "--user", id},
				{"consents", "list", "--user", id},
				{"consents", "revoke", "--user", "u1", "--client", id},
				{"consents", "revoke", "--user", id, "--client", "third"},
				{"users", "list", "--app", id},
				{"keys", "list", "--app", id},
				{"keys", "rotate", "--app", id},
				{"clients", "list", "--app", id},
			} {
				code, out, errs := runCmd(t, e.args(args...)...)
				first, _, _ := strings.Cut(errs, "\n")
				if code != 2 || out != "" || !strings.HasPrefix(first, "aero2 "+args[0]+" "+args[1]+": ") || !strings.Contains(errs, "Usage: aero2 "+args[0]) {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %.200q", args[0], args[1], code, out, errs)
				}
				// The refusal quotes at most a short, escaped prefix.
				if len(first) > 200 || strings.ContainsAny(first, "\r\x1b\x00\t\u202e") {
					t.Errorf("%s %s: the error line echoes the identifier: %.300q", args[0], args[1], first)
				}
			}
		})
	}
	if got := auditLines(t, e); len(got) != 0 {
		t.Errorf("refused identifiers reached the audit log: %v", got)
	}
	// Unicode that prints is an identifier like another: not found.
	code, out, errs := runCmd(t, e.args("users", "disable", "ünïcødé-☃")...)
	if code != 1 || out != "" || errs != "aero2 users disable: no such user \"ünïcødé-☃\"\n" {
		t.Errorf("a printable unknown ID: %d %q %q", code, out, errs)
	}
	if a := adminActions(t, e); len(a) != 1 || a[0]["target"] != "ünïcødé-☃" || a[0]["outcome"] != "failed" || a[0]["reason"] != "no_such_user" {
		t.Errorf("the unknown ID's event: %v", a)
	}
}

// TestAdminUnknownIDs: every command naming what the store does not have
// exits 1 with one line on standard error and nothing on standard output.
func TestAdminUnknownIDs(t *testing.T) {
	e := startAdmin(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "show", "nosuch"}, `aero2 users show: no such user "nosuch"`},
		{[]string{"users", "disable", "nosuch"}, `aero2 users disable: no such user "nosuch"`},
		{[]string{"users", "enable", "nosuch"}, `aero2 users enable: no such user "nosuch"`},
		{[]string{"users", "delete", "nosuch"}, `aero2 users delete: no such user "nosuch"`},
		{[]string{"sessions", "revoke", "nosuch"}, `aero2 sessions revoke: no such session "nosuch"`},
		{[]string{"sessions", "revoke", "--user", "nosuch"}, `aero2 sessions revoke: no such user "nosuch"`},
		{[]string{"consents", "revoke", "--user", "nosuch", "--client", "third"}, `aero2 consents revoke: no such user "nosuch"`},
		{[]string{"users", "show", "--app", "nope", "x"}, `aero2 users show: no application named "nope" (known: default)`},
		{[]string{"keys", "rotate", "--app", "nope"}, `aero2: no application named "nope"`},
	} {
		for _, js := range []bool{false, true} {
			args := c.args
			if js && c.args[1] != "rotate" {
				args = append([]string{args[0], args[1], "--json"}, args[2:]...)
			}
			code, out, errs := runCmd(t, e.args(args...)...)
			if code != 1 || out != "" || errs != c.want+"\n" {
				t.Errorf("%q: exit %d, stdout %q, stderr %q, want %q", args, code, out, errs, c.want)
			}
		}
	}
	// Listing what a user who does not exist has is empty, not an error.
	if ss := jsonCmd[[]store.Session](t, e, "sessions", "list", "--user", "nosuch"); len(ss) != 0 {
		t.Errorf("sessions of nobody: %v", ss)
	}
}

// TestAdminMalformedFlags: a --json that is not a boolean, an unknown or
// valueless flag is a usage error (exit 2, the command's help), and
// nothing runs.
func TestAdminMalformedFlags(t *testing.T) {
	e := startAdmin(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "list", "--json=maybe"}, `invalid boolean value "maybe" for -json`},
		{[]string{"users", "list", "--json="}, `invalid boolean value "" for -json`},
		{[]string{"users", "list", "--json=1\n2"}, `invalid boolean value "1\n2" for -json`},
		{[]string{"users", "list", "--jsonx"}, "flag provided but not defined: -jsonx"},
		{[]string{"users", "list", "---json"}, "bad flag syntax: ---json"},
		{[]string{"users", "disable", "--json=no", "x"}, `invalid boolean value "no" for -json`},
		{[]string{"sessions", "list", "--user"}, "flag needs an argument: -user"},
		{[]string{"consents", "revoke", "--user", "u", "--client"}, "flag needs an argument: -client"},
		{[]string{"keys", "rotate", "--json"}, "flag provided but not defined: -json"},
	} {
		code, out, errs := runCmd(t, e.args(c.args...)...)
		if code != 2 || out != "" || !strings.Contains(errs, c.want) || !strings.Contains(errs, "Usage: aero2 "+c.args[0]+" "+c.args[1]) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", c.args, code, out, errs)
		}
	}
	if got := auditLines(t, e); len(got) != 0 {
		t.Errorf("a usage error wrote audit events: %v", got)
	}
	// --json=true and --json=false are booleans like any other.
	if code, out, _ := runCmd(t, e.args("users", "list", "--json=true")...); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("--json=true: %d %q", code, out)
	}
	if code, out, _ := runCmd(t, e.args("users", "list", "--json=false")...); code != 0 || !strings.HasPrefix(out, "APP ") {
		t.Errorf("--json=false: %d %q", code, out)
	}
}

// TestAdminTablesQuoteWhatWouldNotPrint: a user whose identity provider
// sent a name with a newline, a username with a tab and an email with a
// terminal escape shows on one line of each table, quoted; --json keeps
// the values as they are, escaped as JSON.
func TestAdminTablesQuoteWhatWouldNotPrint(t *testing.T) {
	e := startAdmin(t)
	ctx := t.Context()
	now := time.Now()
	u := &store.User{ID: "mallory", App: "default", Name: "Mallory\ndefault  admin  root@example.com  Root  active", PreferredUsername: "mal\tlory",
		Email: "\x1b[2Jm@example.com", CreatedAt: now, LastLogin: now, Groups: []string{"a\nb"}}
	if err := e.st.CreateUser(ctx, u, &store.Identity{App: "default", IDP: "dev", Subject: "s\r\nforged", UserID: "mallory", Username: "x\x00y", LinkedAt: now, LastLogin: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateSession(ctx, &store.Session{ID: "sess-1", App: "default", UserID: "mallory", IDP: "dev\nforged", IP: "192.0.2.1\n", CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"users", "list"}, {"users", "show", "mallory"}, {"sessions", "list"}} {
		out := e.cmd(t, args...)
		if strings.ContainsAny(out, "\t\r\x1b\x00") {
			t.Errorf("%q prints a raw control character:\n%q", args, out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if strings.HasPrefix(line, "default  admin") || strings.HasPrefix(line, "forged") || strings.HasPrefix(line, "b") {
				t.Errorf("%q: a stored value made a line of its own: %q\n%s", args, line, out)
			}
		}
	}
	if out := e.cmd(t, "users", "list"); !strings.Contains(out, `"Mallory\ndefault  admin`) || !strings.Contains(out, `"mal\tlory"`) || !strings.Contains(out, `"\x1b[2Jm@example.com"`) {
		t.Errorf("users list does not show the values quoted:\n%s", out)
	}
	us := jsonCmd[[]store.User](t, e, "users", "list")
	if len(us) != 1 || us[0].Name != u.Name || us[0].Email != u.Email {
		t.Errorf("users list --json: %+v", us)
	}
}

// TestAdminStoreDown: a store that does not answer is one line on
// standard error and exit 1, for every command, on Redis and on
// PostgreSQL: no stack trace, never the DSN's password; a command that
// changes something records its failure.
func TestAdminStoreDown(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, store, want string }{
		{"redis", `store: {type: redis, redis: {addrs: ["127.0.0.1:1"], dial_timeout: 200ms, password: "hunter2-secret"}}`, "redis at 127.0.0.1:1"},
		{"postgres", `store: {type: postgres, postgres: {dsn: "postgres://aero2:hunter2-secret@127.0.0.1:1/aero2?sslmode=disable", connect_timeout: 1s}}`, "postgres at 127.0.0.1:1"},
		{"combined", `store: {type: combined, redis: {addrs: ["127.0.0.1:1"], dial_timeout: 200ms}, postgres: {dsn: "postgres://aero2:hunter2-secret@127.0.0.1:1/aero2", connect_timeout: 1s}}`, "at 127.0.0.1:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			auditFile := filepath.Join(dir, c.name+".jsonl")
			p := writeConfig(t, good+c.store+"\nlog: {audit: \""+auditFile+"\"}\n")
			for _, args := range [][]string{
				{"users", "list"}, {"users", "show", "u1"}, {"users", "disable", "u1"}, {"users", "delete", "u1"},
				{"sessions", "list"}, {"sessions", "revoke", "s1"}, {"consents", "list"}, {"consents", "revoke", "--user", "u1", "--client", "web"},
				{"keys", "list"}, {"keys", "rotate"},
			} {
				start := time.Now()
				code, out, errs := runCmd(t, append([]string{args[0], args[1], "--config", p}, args[2:]...)...)
				if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) {
					t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
				}
				for _, bad := range []string{"hunter2", "goroutine", "panic", ".go:"} {
					if strings.Contains(errs, bad) {
						t.Errorf("%q: stderr has %q: %q", args, bad, errs)
					}
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("%q took %v against a store that refuses connections", args, d)
				}
			}
			b, err := os.ReadFile(auditFile)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "hunter2") {
				t.Error("the audit log holds the password")
			}
			var n int
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("%v: %q", err, line)
				}
				if m["event"] != "admin.action" || m["outcome"] != "failed" || m["reason"] != "store_unavailable" {
					t.Errorf("event: %v", m)
				}
				n++
			}
			if n != 5 { // disable, delete, revoke, consents revoke, rotate
				t.Errorf("%d failed admin.action events, want 5:\n%s", n, b)
			}
		})
	}
}
