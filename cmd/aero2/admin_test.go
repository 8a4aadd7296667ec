package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// The admin tests run the commands in-process (run, as main does) against
// a whole server on loopback that shares their Redis, as an operator's
// shell and a running deployment would.

const (
	rpSecret   = "rp-secret-0123456789abcdef-0123456789ab"
	rpRedirect = "http://127.0.0.1/rp-cb" // never fetched: the flow stops at it
)

// adminConfig: the dev provider, a first-party relying party with refresh
// tokens, a third-party one that asks for consent, and a proxied route.
// session_cache 1ns: the proxy asks the store on every request, so "the
// next request is refused" is exact (0 means the default, 2s).
const adminConfig = servertest.DevConfig + `
proxy: {session_cache: 1ns}
clients:
  - id: rp
    name: First party
    secret: "` + rpSecret + `"
    redirect_uris: ["` + rpRedirect + `"]
    first_party: true
  - id: third
    name: Third party
    secret: "` + rpSecret + `"
    redirect_uris: ["` + rpRedirect + `"]
routes:
  - path: /app
    upstream: "UP"
`

type adminEnv struct {
	in *servertest.Instance
	st interface {
		store.Store
		store.Admin
	}
	pgDSN string // the PostgreSQL store's DSN, on postgres
	path  string // the commands' configuration file
	audit string // its log.audit file
	hits  atomic.Int64
}

func startAdmin(t *testing.T) *adminEnv { return startAdminOn(t, "redis") }

// startAdminOn: the server and the commands on backend (redis or
// postgres), the commands writing their audit log to e.audit.
func startAdminOn(t *testing.T, backend string) *adminEnv {
	t.Helper()
	e := &adminEnv{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.Write([]byte("upstream " + r.URL.Path))
	}))
	t.Cleanup(up.Close)
	var storeYAML string
	switch backend {
	case "redis":
		rc := redistest.Config(t)
		st, err := redis.Open(context.Background(), rc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e.st = st
		storeYAML = `store: {type: redis, redis: {addrs: ["` + redistest.Addr() + `"], key_prefix: "` + rc.KeyPrefix + `"}}`
	case "postgres":
		pc := pgtest.Config(t)
		e.st = pgtest.Open(t, pc)
		e.pgDSN = pc.DSN
		storeYAML = `store: {type: postgres, postgres: {dsn: "` + pc.DSN + `"}}`
	default:
		t.Fatalf("no backend %q", backend)
	}
	tmpl := strings.ReplaceAll(adminConfig, "UP", up.URL)
	e.in = servertest.Start(t, tmpl, e.st)
	// The commands read the same file, on the same store.
	dir := t.TempDir()
	e.audit = filepath.Join(dir, "audit.jsonl")
	file := strings.ReplaceAll(tmpl, "{{.URL}}", e.in.URL)
	file = strings.Replace(file, "store: {type: memory}", storeYAML, 1) + "log: {audit: \"" + e.audit + "\"}\n"
	e.path = filepath.Join(dir, "aero2.yaml")
	if err := os.WriteFile(e.path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// cmd runs an admin command with --config and wants exit 0.
func (e *adminEnv) cmd(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCmd(t, e.args(args...)...)
	if code != 0 {
		t.Fatalf("aero2 %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// args puts --config after the command's two words, before any "--".
func (e *adminEnv) args(args ...string) []string {
	return append([]string{args[0], args[1], "--config", e.path}, args[2:]...)
}

// jsonCmd runs an admin command with --json and decodes what it prints.
func jsonCmd[T any](t *testing.T, e *adminEnv, args ...string) T {
	t.Helper()
	var v T
	out := e.cmd(t, append([]string{args[0], args[1], "--json"}, args[2:]...)...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("aero2 %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

func (e *adminEnv) rp(id string) oauth2.Config {
	return oauth2.Config{
		ClientID: id, ClientSecret: rpSecret, RedirectURL: rpRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: e.in.URL + "/oauth2/authorize", TokenURL: e.in.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", "offline_access"},
	}
}

// signedIn is a browser signed in as user through the proxy, with the
// first-party relying party's tokens from the same provider session.
type signedIn struct {
	b   *servertest.Browser
	tok *oauth2.Token
}

func (e *adminEnv) signIn(t *testing.T, user string) *signedIn {
	t.Helper()
	s := &signedIn{b: servertest.NewBrowser(t)}
	if p := s.b.SignInDev(e.in.URL+"/app", user); p.Status != http.StatusOK || !strings.HasPrefix(p.Body, "upstream /app") {
		t.Fatalf("sign-in through the proxy: %d %s\n%s", p.Status, p.URL, p.Body)
	}
	rp := e.rp("rp")
	verifier := oauth2.GenerateVerifier()
	status, loc := s.b.Redirect(rp.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	u, err := url.Parse(loc)
	if status != http.StatusSeeOther || err != nil || u.Query().Get("code") == "" {
		t.Fatalf("authorization for the relying party: %d %q", status, loc)
	}
	if s.tok, err = rp.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if s.tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return s
}

// refreshes reports whether the browser's refresh token still works; it
// fails the test on any answer but success or invalid_grant.
func (e *adminEnv) refreshes(t *testing.T, s *signedIn) bool {
	t.Helper()
	rp := e.rp("rp")
	tok, err := rp.TokenSource(context.Background(), &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("refresh failed other than with invalid_grant: %v", err)
		}
		return false
	}
	s.tok = tok
	return true
}

// proxied is the status of the browser's next request to the route,
// without following a redirect to sign in.
func (e *adminEnv) proxied(s *signedIn) int {
	return s.b.NoRedirects().Get(e.in.URL + "/app").Status
}

// signInStatus signs a new browser in at the provider as user and
// returns the page it ends on.
func (e *adminEnv) signInPage(t *testing.T, user string) *servertest.Page {
	t.Helper()
	return servertest.NewBrowser(t).SignInDev(e.in.URL+"/rp/authorize?idp=dev", user)
}

func userID(t *testing.T, e *adminEnv, username string) string {
	t.Helper()
	for _, u := range jsonCmd[[]store.User](t, e, "users", "list") {
		if u.PreferredUsername == username {
			return u.ID
		}
	}
	t.Fatalf("aero2 users list has no %s", username)
	return ""
}

// TestUsersDisableEndsEverythingAtOnce: a signed-in user with a proxy
// session and a refresh token is disabled by the command; the next
// proxied request, the refresh and a new sign-in are refused, and another
// user is untouched. Enabling lets them sign in again.
func TestUsersDisableEndsEverythingAtOnce(t *testing.T) {
	e := startAdmin(t)
	alice := e.signIn(t, "alice")
	eve := e.signIn(t, "eve")
	id := userID(t, e, "alice")
	if ss := jsonCmd[[]store.Session](t, e, "sessions", "list", "--user", id); len(ss) != 1 || ss[0].UserID != id {
		t.Fatalf("alice's sessions before: %+v", ss)
	}

	out := e.cmd(t, "users", "disable", id)
	if out != "default: user "+id+" disabled; 1 session(s) ended\n" {
		t.Errorf("disable printed %q", out)
	}
	hits := e.hits.Load()
	if st := e.proxied(alice); st != http.StatusFound {
		t.Errorf("the next proxied request of a disabled user: %d, want a redirect to sign in", st)
	}
	if e.hits.Load() != hits {
		t.Error("the upstream was reached after the disable")
	}
	if e.refreshes(t, alice) {
		t.Error("a disabled user's refresh token still works")
	}
	if p := e.signInPage(t, "alice"); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Account disabled") {
		t.Errorf("a disabled user signs in: %d %s", p.Status, p.URL)
	}
	// Signing in again through the proxy ends on the same refusal.
	if p := alice.b.SignInDev(e.in.URL+"/app", "alice"); p.Status != http.StatusForbidden || e.hits.Load() != hits {
		t.Errorf("a disabled user through the proxy: %d", p.Status)
	}
	show := jsonCmd[struct {
		store.User
		Sessions []store.Session `json:"sessions"`
	}](t, e, "users", "show", id)
	if !show.Disabled || len(show.Sessions) != 0 {
		t.Errorf("users show after disable: disabled %v, %d sessions", show.Disabled, len(show.Sessions))
	}
	if table := e.cmd(t, "users", "list"); !strings.Contains(table, "disabled") || !strings.HasPrefix(table, "APP ") {
		t.Errorf("users list table:\n%s", table)
	}
	// eve is untouched.
	if e.proxied(eve) != http.StatusOK || !e.refreshes(t, eve) {
		t.Error("disabling alice ended another user's session")
	}

	if out := e.cmd(t, "users", "enable", id); out != "default: user "+id+" enabled\n" {
		t.Errorf("enable printed %q", out)
	}
	if p := e.signInPage(t, "alice"); p.Status != http.StatusOK || !strings.Contains(p.URL.Path, "/account") {
		t.Errorf("an enabled user signs in: %d %s", p.Status, p.URL)
	}
	if e.refreshes(t, alice) {
		t.Error("enabling brought back a refresh token that disabling ended")
	}
	again := e.signIn(t, "alice")
	if e.proxied(again) != http.StatusOK || !e.refreshes(t, again) {
		t.Error("an enabled user's new session does not work")
	}
}

// TestDisabledUsersGrantsAreRefusedWithoutTheirSessions: a grant can
// outlive its session (one that timed out leaves its refresh token), so
// the token endpoint asks about the user itself. Here the flag is set in
// the store without ending the session, and the refresh is refused.
//
// On PostgreSQL the flag is set by SQL, as a database administrator (or
// another system of record) would, without Aero2 hearing of it: the
// refresh reads the user's row with the token.
func TestDisabledUsersGrantsAreRefusedWithoutTheirSessions(t *testing.T) {
	for _, backend := range []string{"redis", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := startAdminOn(t, backend)
			alice := e.signIn(t, "alice")
			id := userID(t, e, "alice")
			if !e.refreshes(t, alice) {
				t.Fatal("alice's refresh token does not work")
			}
			setDisabled := func(disabled bool) {
				t.Helper()
				if backend == "postgres" {
					pool, err := pgxpool.New(context.Background(), e.pgDSN)
					if err != nil {
						t.Fatal(err)
					}
					defer pool.Close()
					tag, err := pool.Exec(context.Background(), `UPDATE users SET disabled = $1 WHERE app = 'default' AND id = $2`, disabled, id)
					if err != nil || tag.RowsAffected() != 1 {
						t.Fatalf("UPDATE users: %v %v", tag, err)
					}
					return
				}
				if err := e.st.SetUserDisabled(context.Background(), "default", id, disabled); err != nil {
					t.Fatal(err)
				}
			}
			setDisabled(true)
			if e.refreshes(t, alice) {
				t.Error("a disabled user's refresh token works while their session lives")
			}
			// The grant died with the refusal: enabling does not bring it back.
			setDisabled(false)
			if e.refreshes(t, alice) {
				t.Error("a refused grant works again after enable")
			}
		})
	}
}

func TestSessionsRevoke(t *testing.T) {
	e := startAdmin(t)
	a1, a2 := e.signIn(t, "alice"), e.signIn(t, "alice")
	eve := e.signIn(t, "eve")
	id := userID(t, e, "alice")
	ss := jsonCmd[[]store.Session](t, e, "sessions", "list")
	if len(ss) != 3 {
		t.Fatalf("sessions list: %d sessions", len(ss))
	}
	var one string
	for _, s := range ss {
		if s.UserID == id {
			one = s.ID
		}
	}
	if table := e.cmd(t, "sessions", "list"); !strings.Contains(table, one) || !strings.HasPrefix(table, "APP ") {
		t.Errorf("sessions list table lacks %s:\n%s", one, table)
	}
	if out := e.cmd(t, "sessions", "revoke", "--", one); out != "default: session "+one+" ended\n" {
		t.Errorf("revoke printed %q", out)
	}
	ended := 0
	for _, s := range []*signedIn{a1, a2} {
		if e.proxied(s) != http.StatusOK {
			ended++
			if e.refreshes(t, s) {
				t.Error("a revoked session's refresh token still works")
			}
		}
	}
	if ended != 1 {
		t.Errorf("revoking one session ended %d proxy sessions", ended)
	}
	code, _, errs := runCmd(t, e.args("sessions", "revoke", "--", one)...)
	if code != 1 || !strings.Contains(errs, "no such session") {
		t.Errorf("revoking it again: %d %q", code, errs)
	}
	r := jsonCmd[map[string]any](t, e, "sessions", "revoke", "--user", id)
	if r["sessions_ended"] != 1.0 || r["user_id"] != id {
		t.Errorf("revoke --user: %v", r)
	}
	if e.proxied(a1) == http.StatusOK || e.proxied(a2) == http.StatusOK {
		t.Error("a session of alice survived revoke --user")
	}
	if e.proxied(eve) != http.StatusOK {
		t.Error("revoking alice's sessions ended eve's")
	}
	// alice may sign in again: revoking is not disabling.
	if p := e.signInPage(t, "alice"); p.Status != http.StatusOK {
		t.Errorf("sign-in after revoke: %d", p.Status)
	}
	for _, bad := range [][]string{
		{"sessions", "revoke"},
		{"sessions", "revoke", "--user", id, "--", one},
		{"sessions", "revoke", "--", "a", "b"},
	} {
		if code, _, errs := runCmd(t, e.args(bad...)...); code != 2 || !strings.Contains(errs, "Usage: aero2 sessions revoke") {
			t.Errorf("%q: %d %q", bad, code, errs)
		}
	}
}

func TestConsentsListAndRevoke(t *testing.T) {
	e := startAdmin(t)
	alice := e.signIn(t, "alice")
	id := userID(t, e, "alice")
	third := e.rp("third")
	third.Scopes = []string{"openid", "email"}
	authorize := func() *servertest.Page {
		return alice.b.NoRedirects().Get(third.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	}
	p := alice.b.Get(third.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	action, v := p.Form(t, "/oauth2/consent")
	v.Set("decision", "allow")
	if res, err := alice.b.NoRedirects().Client.PostForm(action, v); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent: %v %v", res, err)
	}
	if p := authorize(); p.Status != http.StatusSeeOther {
		t.Fatalf("a consented client is asked again: %d", p.Status)
	}
	cs := jsonCmd[[]map[string]any](t, e, "consents", "list", "--user", id)
	if len(cs) != 1 || cs[0]["client_id"] != "third" || cs[0]["user_id"] != id {
		t.Fatalf("consents list: %v", cs)
	}
	if table := e.cmd(t, "consents", "list"); !strings.Contains(table, "third") || !strings.Contains(table, "email openid") {
		t.Errorf("consents list table:\n%s", table)
	}
	if out := e.cmd(t, "consents", "revoke", "--user", id, "--client", "third"); !strings.Contains(out, "removed") {
		t.Errorf("revoke printed %q", out)
	}
	if p := authorize(); p.Status != http.StatusOK || !strings.Contains(p.Body, "/oauth2/consent") {
		t.Errorf("after the revoke the client is not asked again: %d", p.Status)
	}
	if cs := jsonCmd[[]map[string]any](t, e, "consents", "list"); len(cs) != 0 {
		t.Errorf("consents after revoke: %v", cs)
	}
	if out := e.cmd(t, "consents", "revoke", "--user", id, "--client", "third"); !strings.Contains(out, "had no consent") {
		t.Errorf("revoking twice printed %q", out)
	}
	if code, _, errs := runCmd(t, "consents", "revoke", "--user", id, "--config", e.path); code != 2 || !strings.Contains(errs, "--client are required") {
		t.Errorf("revoke without --client: %d %q", code, errs)
	}
}

// TestUsersDelete: the user, their identities and their sessions go; the
// next sign-in with the same account is a new user.
func TestUsersDelete(t *testing.T) {
	e := startAdmin(t)
	alice := e.signIn(t, "alice")
	id := userID(t, e, "alice")
	d := jsonCmd[map[string]any](t, e, "users", "show", id)
	if ids, _ := d["identities"].([]any); len(ids) != 1 {
		t.Fatalf("users show: identities %v", d["identities"])
	}
	if show := e.cmd(t, "users", "show", id); !strings.Contains(show, "Identities (1):") || !strings.Contains(show, "Sessions (1):") {
		t.Errorf("users show:\n%s", show)
	}
	if out := e.cmd(t, "users", "delete", id); out != "default: user "+id+" deleted; 1 session(s) ended\n" {
		t.Errorf("delete printed %q", out)
	}
	if e.proxied(alice) == http.StatusOK || e.refreshes(t, alice) {
		t.Error("a deleted user's session or refresh token still works")
	}
	code, _, errs := runCmd(t, "users", "show", id, "--config", e.path)
	if code != 1 || !strings.Contains(errs, "no such user") {
		t.Errorf("show a deleted user: %d %q", code, errs)
	}
	if p := e.signInPage(t, "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in after delete: %d", p.Status)
	}
	if again := userID(t, e, "alice"); again == id {
		t.Error("the deleted user came back under the same ID")
	}
}

func TestKeysAndClientsList(t *testing.T) {
	e := startAdmin(t)
	ks := jsonCmd[[]map[string]any](t, e, "keys", "list")
	if len(ks) != 2 || ks[0]["state"] != "current" || ks[1]["state"] != "next" || ks[0]["kid"] == "" {
		t.Fatalf("keys list: %v", ks)
	}
	e.cmd(t, "keys", "rotate")
	ks = jsonCmd[[]map[string]any](t, e, "keys", "list", "--app", "default")
	if len(ks) != 3 || ks[2]["state"] != "previous" {
		t.Fatalf("keys list after a rotation: %v", ks)
	}
	cs := jsonCmd[[]map[string]any](t, e, "clients", "list")
	var ids []string
	for _, c := range cs {
		ids = append(ids, c["client_id"].(string))
		if _, ok := c["secret"]; ok {
			t.Error("clients list prints a secret")
		}
	}
	if strings.Join(ids, " ") != "rp third aero2-proxy" {
		t.Errorf("clients: %v", ids)
	}
	table := e.cmd(t, "clients", "list")
	if strings.Contains(table, rpSecret) || !strings.Contains(table, "the proxy's") || !strings.Contains(table, "First party") {
		t.Errorf("clients list table:\n%s", table)
	}
	if code, _, errs := runCmd(t, "users", "list", "--app", "nope", "--config", e.path); code != 1 || !strings.Contains(errs, `no application named "nope" (known: default)`) {
		t.Errorf("unknown app: %d %q", code, errs)
	}
}

// TestAdminRefusesTheMemoryStore: the memory store is inside the server
// process; a command would see an empty store of its own and change
// nothing, so it says why and fails. clients list reads only the file.
func TestAdminRefusesTheMemoryStore(t *testing.T) {
	p := writeConfig(t, good)
	for _, args := range [][]string{
		{"users", "list"}, {"users", "disable", "u1"}, {"sessions", "list"}, {"sessions", "revoke", "--user", "u1"},
		{"consents", "list"}, {"keys", "list"},
	} {
		code, out, errs := runCmd(t, append(args, "--config", p)...)
		if code != 1 || out != "" || !strings.Contains(errs, "memory store lives inside the one server process") || !strings.Contains(errs, "store.type: redis") {
			t.Errorf("%q on memory: %d %q %q", args, code, out, errs)
		}
	}
	if code, out, _ := runCmd(t, "clients", "list", "--config", p); code != 0 || !strings.Contains(out, "aero2-proxy") && !strings.HasPrefix(out, "APP") {
		t.Errorf("clients list on memory: %d %q", code, out)
	}
	_ = config.AuthNone
}
