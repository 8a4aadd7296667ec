package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/user"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// auditLines reads the commands' audit log: every line one JSON object.
func auditLines(t *testing.T, e *adminEnv) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(e.audit)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%q", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// adminActions is the admin.action events of the log.
func adminActions(t *testing.T, e *adminEnv) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range auditLines(t, e) {
		if m["event"] == "admin.action" {
			out = append(out, m)
		}
	}
	return out
}

// consentTo has the signed-in browser allow the third-party client.
func consentTo(t *testing.T, e *adminEnv, s *signedIn) {
	t.Helper()
	third := e.rp("third")
	third.Scopes = []string{"openid", "email"}
	p := s.b.Get(third.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	action, v := p.Form(t, "/oauth2/consent")
	v.Set("decision", "allow")
	if res, err := s.b.NoRedirects().Client.PostForm(action, v); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent: %v %v", res, err)
	}
}

// TestAdminActionsAreAudited (issue 10): every admin command that changes
// something writes one admin.action line to log.audit — action, target,
// application, the operating-system user and host, the outcome (and a
// reason word when it failed) — on Redis and on PostgreSQL; the read-only
// commands write none; no secret reaches the file.
func TestAdminActionsAreAudited(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"redis", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := startAdminOn(t, backend)
			alice := e.signIn(t, "alice")
			e.signIn(t, "alice")
			consentTo(t, e, alice)
			id := userID(t, e, "alice")
			ss := jsonCmd[[]store.Session](t, e, "sessions", "list", "--user", id)
			if len(ss) != 2 {
				t.Fatalf("sessions: %+v", ss)
			}
			for _, ro := range [][]string{
				{"users", "list"}, {"users", "show", id}, {"sessions", "list"}, {"consents", "list"}, {"keys", "list"}, {"clients", "list"},
			} {
				e.cmd(t, ro...)
			}
			if got := adminActions(t, e); len(got) != 0 {
				t.Fatalf("read-only commands wrote admin.action events: %v", got)
			}

			e.cmd(t, "sessions", "revoke", "--", ss[0].ID)
			e.cmd(t, "consents", "revoke", "--user", id, "--client", "third")
			e.cmd(t, "consents", "revoke", "--user", id, "--client", "third")
			e.cmd(t, "users", "disable", id)
			e.cmd(t, "users", "enable", id)
			e.cmd(t, "sessions", "revoke", "--user", id)
			e.cmd(t, "keys", "rotate")
			kid := ""
			for _, k := range jsonCmd[[]map[string]any](t, e, "keys", "list") {
				if k["state"] == "current" {
					kid, _ = k["kid"].(string)
				}
			}
			e.cmd(t, "users", "delete", id)
			for _, bad := range [][]string{
				{"users", "disable", id},
				{"sessions", "revoke", "--", "no-such-session"},
				{"users", "enable", "--app", "nope", id},
			} {
				if code, _, errs := runCmd(t, e.args(bad...)...); code != 1 {
					t.Errorf("%q: exit %d %q, want 1", bad, code, errs)
				}
			}

			type want struct{ action, app, target, user, client, session, outcome, reason string }
			wants := []want{
				{"sessions.revoke", "default", ss[0].ID, "", "", ss[0].ID, "succeeded", ""},
				{"consents.revoke", "default", "third", id, "third", "", "succeeded", ""},
				{"consents.revoke", "default", "third", id, "third", "", "succeeded", "no_consent"},
				{"users.disable", "default", id, id, "", "", "succeeded", ""},
				{"users.enable", "default", id, id, "", "", "succeeded", ""},
				{"sessions.revoke", "default", id, id, "", "", "succeeded", ""},
				{"keys.rotate", "default", kid, "", "", "", "succeeded", ""},
				{"users.delete", "default", id, id, "", "", "succeeded", ""},
				{"users.disable", "", id, id, "", "", "failed", "no_such_user"},
				{"sessions.revoke", "", "no-such-session", "", "", "no-such-session", "failed", "no_such_session"},
				{"users.enable", "nope", id, id, "", "", "failed", "no_such_application"},
			}
			got := adminActions(t, e)
			if len(got) != len(wants) {
				t.Fatalf("%d admin.action events, want %d:\n%v", len(got), len(wants), got)
			}
			str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
			for i, w := range wants {
				g := got[i]
				have := want{str(g, "action"), str(g, "app"), str(g, "target"), str(g, "user"), str(g, "client_id"), str(g, "session"), str(g, "outcome"), str(g, "reason")}
				if have != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, have, w)
				}
				if g["actor"] != me.Username || g["actor_host"] != host || g["msg"] != "audit" || g["time"] == nil {
					t.Errorf("event %d: actor %v on %v, want %s on %s", i, g["actor"], g["actor_host"], me.Username, host)
				}
			}
			// The applications' own events come with them: the session
			// manager's and the provider's.
			var ended, removed int
			for _, m := range auditLines(t, e) {
				switch m["event"] {
				case "session.ended":
					ended++
				case "consent.removed":
					removed++
				}
			}
			if ended < 2 || removed < 1 {
				t.Errorf("session.ended %d, consent.removed %d: the commands' applications do not write their events", ended, removed)
			}
			b, _ := os.ReadFile(e.audit)
			for _, secret := range []string{rpSecret, servertest.CookieKey, servertest.StorageKey, alice.tok.RefreshToken, alice.tok.AccessToken} {
				if strings.Contains(string(b), secret) {
					t.Errorf("the audit log holds a secret %.8s…", secret)
				}
			}
		})
	}
}

// TestAdminAuditOnStdout: with log.audit: stdout the events go to standard
// error, and standard output stays one JSON document for --json.
func TestAdminAuditOnStdout(t *testing.T) {
	e := startAdmin(t)
	e.signIn(t, "alice")
	id := userID(t, e, "alice")
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path, []byte(strings.Replace(string(b), "log: {audit: \""+e.audit+"\"}", "log: {audit: stdout}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, e.args("users", "disable", "--json", id)...)
	var r map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r["action"] != "disabled" {
		t.Fatalf("disable --json with the audit log on stdout: %d %q %q", code, out, errs)
	}
	// session.ended (the session manager's), then admin.action.
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	var ended, ev map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &ended) != nil || json.Unmarshal([]byte(lines[1]), &ev) != nil ||
		ended["event"] != "session.ended" || ev["event"] != "admin.action" || ev["target"] != id {
		t.Fatalf("the events on standard error: %q", errs)
	}
}
