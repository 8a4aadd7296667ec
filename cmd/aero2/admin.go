package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/store"
)

// The admin commands work on the store the running servers share
// (server.Admin): they need store.type redis, and say so for memory.
// Each prints a table for people, or JSON with --json for scripts, and
// exits 1 on any error, with one line on standard error.

const storeNote = `

Needs the store the servers share (store.type: redis); the memory store
lives inside one server process and cannot be administered from outside.`

func appFlag(fs *flag.FlagSet) *string {
	return fs.String("app", "", "only this application (default: every application)")
}

func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON instead of a table")
}

// flagsAppJSON: --app and --json.
func flagsAppJSON(fs *flag.FlagSet) func() flagValues {
	app, js := appFlag(fs), jsonFlag(fs)
	return func() flagValues { return flagValues{app: *app, json: *js} }
}

// flagsAppUserJSON: --app, --user and --json.
func flagsAppUserJSON(usage string) func(fs *flag.FlagSet) func() flagValues {
	return func(fs *flag.FlagSet) func() flagValues {
		app, js := appFlag(fs), jsonFlag(fs)
		user := fs.String("user", "", usage)
		return func() flagValues { return flagValues{app: *app, user: *user, json: *js} }
	}
}

var adminCommands = []*command{
	{
		name: "users list", summary: "list users", args: "[--config FILE] [--app NAME] [--json]", config: true,
		help:  "Lists the users of every application (or of NAME): ID, username, email,\nname, whether disabled, and when they last signed in." + storeNote,
		flags: flagsAppJSON,
		run:   withAdmin(runUsersList),
	},
	{
		name: "users show", summary: "show a user, their identities, sessions and consents", args: "[--config FILE] [--app NAME] [--json] USER_ID", config: true,
		help:    "Shows one user: their profile, the identity provider accounts linked\nto them, their live sessions and the clients they allowed." + storeNote,
		flags:   flagsAppJSON,
		run:     withAdmin(runUsersShow),
		minArgs: 1, maxArgs: 1,
	},
	{
		name: "users disable", action: "users.disable", summary: "stop a user signing in, ending their sessions and tokens", args: "[--config FILE] [--app NAME] [--json] USER_ID", config: true,
		help: `Disables a user: they can no longer sign in, and every session of theirs
ends at once, with what was issued in it: refresh tokens, the tokens at
introspection and userinfo, and the proxy's sessions (within
proxy.session_cache). Their other grants are refused at the next use.
"aero2 users enable" lets them sign in again; nothing that ended comes
back.` + storeNote,
		flags:   flagsAppJSON,
		run:     withAdmin(runUsersDisable),
		minArgs: 1, maxArgs: 1,
	},
	{
		name: "users enable", action: "users.enable", summary: "let a disabled user sign in again", args: "[--config FILE] [--app NAME] [--json] USER_ID", config: true,
		help:    "Enables a disabled user: they can sign in again." + storeNote,
		flags:   flagsAppJSON,
		run:     withAdmin(runUsersEnable),
		minArgs: 1, maxArgs: 1,
	},
	{
		name: "users delete", action: "users.delete", summary: "delete a user, ending their sessions and tokens", args: "[--config FILE] [--app NAME] [--json] USER_ID", config: true,
		help: `Deletes a user: their sessions end as with "aero2 users disable", their
consents are removed, then the user and the identity provider accounts
linked to them. A later sign-in with one of those accounts creates a new
user, with a new ID.` + storeNote,
		flags:   flagsAppJSON,
		run:     withAdmin(runUsersDelete),
		minArgs: 1, maxArgs: 1,
	},
	{
		name: "sessions list", summary: "list browser sessions", args: "[--config FILE] [--app NAME] [--user USER_ID] [--json]", config: true,
		help:  "Lists the live browser sessions of every application (or of NAME), or\nof one user: the session ID (what \"aero2 sessions revoke\" takes), the\nuser, the identity provider, when it started, was last used and ends." + storeNote,
		flags: flagsAppUserJSON("only this user's sessions"),
		run:   withAdmin(runSessionsList),
	},
	{
		name: "sessions revoke", action: "sessions.revoke", summary: "end a session, or every session of a user", args: "[--config FILE] [--app NAME] [--json] (SESSION_ID | --user USER_ID)", config: true,
		help: `Ends one session (by its ID, from "aero2 sessions list") or every
session of a user, as signing out would: what the provider issued in it
is revoked, and the proxy sessions that came from it end within
proxy.session_cache. The user may sign in again. A session ID may begin
with "-": put "--" before it (aero2 sessions revoke -- -Q-C0i8...).` + storeNote,
		flags:   flagsAppUserJSON("end every session of this user"),
		run:     withAdmin(runSessionsRevoke),
		minArgs: 0, maxArgs: 1,
	},
	{
		name: "consents list", summary: "list what users allowed clients", args: "[--config FILE] [--app NAME] [--user USER_ID] [--json]", config: true,
		help:  "Lists the consents users gave on the consent page: which client may\nhave which scopes. First-party clients ask for none." + storeNote,
		flags: flagsAppUserJSON("only this user's consents"),
		run:   withAdmin(runConsentsList),
	},
	{
		name: "consents revoke", action: "consents.revoke", summary: "forget what a user allowed a client", args: "[--config FILE] [--app NAME] [--json] --user USER_ID --client CLIENT_ID", config: true,
		help: `Removes a user's consent to a client, as "Remove access" on the account
page does: the tokens the client holds for the user are revoked, and its
next authorization request shows the consent page again.` + storeNote,
		flags: func(fs *flag.FlagSet) func() flagValues {
			app, js := appFlag(fs), jsonFlag(fs)
			user := fs.String("user", "", "the user (required)")
			client := fs.String("client", "", "the client (required)")
			return func() flagValues { return flagValues{app: *app, user: *user, client: *client, json: *js} }
		},
		run: withAdmin(runConsentsRevoke),
	},
	{
		name: "clients list", summary: "list the OAuth clients the configuration defines", args: "[--config FILE] [--app NAME] [--json]", config: true,
		help: `Lists the OAuth clients of every application (or of NAME) as the servers
register them, the proxy's own client included: ID, name, how it
authenticates, its grant types and redirect URIs. Secrets are never
printed. Reads only the configuration: any store.type works.`,
		flags: flagsAppJSON,
		run:   runClientsList,
	},
	{
		name: "keys list", summary: "list the token signing keys in the shared store", args: "[--config FILE] [--app NAME] [--json]", config: true,
		help: `Lists the signing keys of every application (or of NAME): the current
key, the next one (already published, so that caches have it before it
signs), and the previous ones still published until their tokens expire.
An application whose server never started has none yet.` + storeNote,
		flags: flagsAppJSON,
		run:   withAdmin(runKeysList),
	},
	{
		name: "keys rotate", action: "keys.rotate", summary: "rotate the token signing keys in the shared store", args: "[--config FILE] [--app NAME]", config: true,
		help: `Rotates the signing keys of every application (or of NAME): the next
key becomes the current one and a new next key is made; the retired key
stays published until the tokens it signed have expired. Needs the store
the servers share (store.type: redis); running servers pick the new keys
up within 30 seconds.`,
		flags: func(fs *flag.FlagSet) func() flagValues {
			app := fs.String("app", "", "rotate only this application's keys")
			return func() flagValues { return flagValues{app: *app} }
		},
		run: runKeysRotate,
	},
}

// withAdmin loads the configuration and opens the shared store (and, for
// a command that changes something, the audit log) for an admin command.
func withAdmin(fn func(ctx context.Context, c *invocation, a *server.Admin) error) func(context.Context, *invocation) int {
	return func(ctx context.Context, c *invocation) int {
		cfg, closeAudit, code := prepareAdmin(c)
		if cfg == nil {
			return code
		}
		defer closeAudit()
		a, err := server.OpenAdmin(ctx, cfg, c.audit)
		if err != nil {
			c.record(ctx, "", err)
			fmt.Fprintf(c.stderr, "aero2 %s: %v\n", commandName(c), err)
			return 1
		}
		defer a.Close()
		if err := fn(ctx, c, a); err != nil {
			var u usageError
			if errors.As(err, &u) {
				return usageExit(c, err)
			}
			fmt.Fprintf(c.stderr, "aero2 %s: %v\n", commandName(c), err)
			return 1
		}
		return 0
	}
}

// prepareAdmin checks the command's IDs, loads the configuration and opens
// the audit log: what every admin command does first. A nil config means
// the command must exit with code (having said why).
func prepareAdmin(c *invocation) (cfg *config.Config, closeAudit func() error, code int) {
	if err := checkIDs(c); err != nil {
		return nil, nil, usageExit(c, err)
	}
	cfg, ok := loadConfig(c)
	if !ok {
		return nil, nil, 1
	}
	closeAudit, ok = openAudit(c, cfg.Log.Audit)
	if !ok {
		return nil, nil, 1
	}
	return cfg, closeAudit, 0
}

// usageExit prints a usage error with the command's help: exit 2.
func usageExit(c *invocation, err error) int {
	fmt.Fprintf(c.stderr, "aero2 %s: %v\n\n%s", commandName(c), err, commandHelp(lookup(commandName(c))))
	return 2
}

// openAudit opens log.audit for a command with an action, and sets its
// event; a command that cannot write its audit event does not run.
func openAudit(c *invocation, dest string) (close func() error, ok bool) {
	if c.action == "" {
		return func() error { return nil }, true
	}
	var l audit.Logger
	closeAudit := func() error { return nil }
	switch dest {
	case "stdout", "stderr":
		// A command's standard output is its table or --json answer,
		// which a script parses: the events go to standard error, the
		// stream a command's diagnostics share. (Either is the
		// operator's terminal, not the servers' log collector: a file
		// is the sink that collects both.)
		l = audit.New(c.stderr)
	default:
		var err error
		if l, closeAudit, err = audit.Open(dest); err != nil {
			fmt.Fprintf(c.stderr, "aero2 %s: %v\n", commandName(c), err)
			return nil, false
		}
	}
	e := baseEvent(c, c.action)
	c.audit, c.event = l, &e
	return closeAudit, true
}

// usageError is a wrong combination of flags and arguments (exit 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// commandName is the running command's name; withAdmin's functions are
// shared, so it is looked up from the invocation.
func commandName(c *invocation) string { return c.name }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, columns aligned (text/tabwriter).
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// when is a time for a table: UTC to the minute, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(u *store.User) string {
	if u.Disabled {
		return "disabled"
	}
	return "active"
}

func runUsersList(ctx context.Context, c *invocation, a *server.Admin) error {
	us, err := a.Users(ctx, c.flags.app)
	if err != nil {
		return err
	}
	if c.flags.json {
		return printJSON(c.stdout, nonNil(us))
	}
	var rows [][]string
	for _, u := range us {
		rows = append(rows, []string{u.App, u.ID, orDash(u.PreferredUsername), orDash(u.Email), orDash(u.Name), status(u), when(u.LastLogin)})
	}
	return table(c.stdout, "APP\tID\tUSERNAME\tEMAIL\tNAME\tSTATUS\tLAST SIGN-IN", rows)
}

func runUsersShow(ctx context.Context, c *invocation, a *server.Admin) error {
	d, err := a.User(ctx, c.flags.app, c.args[0])
	if err != nil {
		return err
	}
	if c.flags.json {
		d.Identities, d.Sessions, d.Consents = nonNil(d.Identities), nonNil(d.Sessions), nonNil(d.Consents)
		return printJSON(c.stdout, d)
	}
	u := d.User
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"app", u.App}, {"id", u.ID}, {"status", status(u)}, {"username", orDash(u.PreferredUsername)},
		{"name", orDash(u.Name)}, {"email", orDash(u.Email) + map[bool]string{true: " (verified)", false: ""}[u.EmailVerified]},
		{"groups", orDash(strings.Join(u.Groups, ", "))}, {"created", when(u.CreatedAt)}, {"last sign-in", when(u.LastLogin)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], cell(kv[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nIdentities (%d):\n", len(d.Identities))
	var rows [][]string
	for _, id := range d.Identities {
		rows = append(rows, []string{id.IDP, id.Subject, orDash(id.Username), orDash(id.Email), when(id.LinkedAt), when(id.LastLogin)})
	}
	if err := table(c.stdout, "IDP\tSUBJECT\tUSERNAME\tEMAIL\tLINKED\tLAST SIGN-IN", rows); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nSessions (%d):\n", len(d.Sessions))
	if err := sessionTable(c.stdout, d.Sessions); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nConsents (%d):\n", len(d.Consents))
	rows = nil
	for _, cs := range d.Consents {
		rows = append(rows, []string{cs.ClientID, strings.Join(cs.Scopes, " ")})
	}
	return table(c.stdout, "CLIENT\tSCOPES", rows)
}

// result is what a command that changes something prints with --json.
type result struct {
	App           string `json:"app"`
	UserID        string `json:"user_id,omitempty"`
	SessionID     string `json:"session_id,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	Action        string `json:"action"`
	SessionsEnded *int   `json:"sessions_ended,omitempty"`
	Removed       *bool  `json:"removed,omitempty"`
}

func report(c *invocation, r result, text string) error {
	if c.flags.json {
		return printJSON(c.stdout, r)
	}
	_, err := fmt.Fprintln(c.stdout, text)
	return err
}

func runUsersDisable(ctx context.Context, c *invocation, a *server.Admin) error {
	id := c.args[0]
	app, n, err := a.DisableUser(ctx, c.flags.app, id)
	c.record(ctx, app, err, userTarget(id))
	if err != nil {
		return err
	}
	return report(c, result{App: app, UserID: id, Action: "disabled", SessionsEnded: &n},
		fmt.Sprintf("%s: user %s disabled; %d session(s) ended", app, id, n))
}

func runUsersEnable(ctx context.Context, c *invocation, a *server.Admin) error {
	id := c.args[0]
	app, err := a.EnableUser(ctx, c.flags.app, id)
	c.record(ctx, app, err, userTarget(id))
	if err != nil {
		return err
	}
	return report(c, result{App: app, UserID: id, Action: "enabled"}, fmt.Sprintf("%s: user %s enabled", app, id))
}

func runUsersDelete(ctx context.Context, c *invocation, a *server.Admin) error {
	id := c.args[0]
	app, n, err := a.DeleteUser(ctx, c.flags.app, id)
	c.record(ctx, app, err, userTarget(id))
	if err != nil {
		return err
	}
	return report(c, result{App: app, UserID: id, Action: "deleted", SessionsEnded: &n},
		fmt.Sprintf("%s: user %s deleted; %d session(s) ended", app, id, n))
}

func sessionTable(w io.Writer, ss []*store.Session) error {
	var rows [][]string
	for _, s := range ss {
		rows = append(rows, []string{s.App, s.ID, s.UserID, orDash(s.IDP), when(s.CreatedAt), when(s.LastSeen), when(s.ExpiresAt), orDash(s.IP)})
	}
	return table(w, "APP\tSESSION\tUSER\tIDP\tSTARTED\tLAST SEEN\tENDS BY\tADDRESS", rows)
}

func runSessionsList(ctx context.Context, c *invocation, a *server.Admin) error {
	ss, err := a.Sessions(ctx, c.flags.app, c.flags.user)
	if err != nil {
		return err
	}
	if c.flags.json {
		return printJSON(c.stdout, nonNil(ss))
	}
	return sessionTable(c.stdout, ss)
}

func runSessionsRevoke(ctx context.Context, c *invocation, a *server.Admin) error {
	switch {
	case len(c.args) == 1 && c.flags.user != "":
		return usageError("give a session ID or --user, not both")
	case len(c.args) == 1:
		app, err := a.RevokeSession(ctx, c.flags.app, c.args[0])
		c.record(ctx, app, err, func(e *audit.Event) { e.Session = c.args[0] })
		if err != nil {
			return err
		}
		return report(c, result{App: app, SessionID: c.args[0], Action: "session revoked"}, fmt.Sprintf("%s: session %s ended", app, c.args[0]))
	case c.flags.user != "":
		app, n, err := a.RevokeUserSessions(ctx, c.flags.app, c.flags.user)
		c.record(ctx, app, err)
		if err != nil {
			return err
		}
		return report(c, result{App: app, UserID: c.flags.user, Action: "sessions revoked", SessionsEnded: &n},
			fmt.Sprintf("%s: %d session(s) of user %s ended", app, n, c.flags.user))
	}
	return usageError("give a session ID or --user USER_ID")
}

func runConsentsList(ctx context.Context, c *invocation, a *server.Admin) error {
	cs, err := a.Consents(ctx, c.flags.app, c.flags.user)
	if err != nil {
		return err
	}
	if c.flags.json {
		return printJSON(c.stdout, nonNil(cs))
	}
	var rows [][]string
	for _, x := range cs {
		rows = append(rows, []string{x.App, x.UserID, x.ClientID, strings.Join(x.Scopes, " ")})
	}
	return table(c.stdout, "APP\tUSER\tCLIENT\tSCOPES", rows)
}

func runConsentsRevoke(ctx context.Context, c *invocation, a *server.Admin) error {
	if c.flags.user == "" || c.flags.client == "" {
		return usageError("--user and --client are required")
	}
	app, removed, err := a.RevokeConsent(ctx, c.flags.app, c.flags.user, c.flags.client)
	c.record(ctx, app, err, func(e *audit.Event) {
		// The consent is the user's to the client: the client is the
		// target, the user its owner.
		e.Target = c.flags.client
		if err == nil && !removed {
			e.Reason = "no_consent"
		}
	})
	if err != nil {
		return err
	}
	text := fmt.Sprintf("%s: consent of user %s to client %s removed", app, c.flags.user, c.flags.client)
	if !removed {
		text = fmt.Sprintf("%s: user %s had no consent to client %s", app, c.flags.user, c.flags.client)
	}
	return report(c, result{App: app, UserID: c.flags.user, ClientID: c.flags.client, Action: "consent revoked", Removed: &removed}, text)
}

func runClientsList(_ context.Context, c *invocation) int {
	if err := checkIDs(c); err != nil {
		return usageExit(c, err)
	}
	cfg, ok := loadConfig(c)
	if !ok {
		return 1
	}
	cs, err := server.Clients(cfg, c.flags.app)
	if err == nil && c.flags.json {
		err = printJSON(c.stdout, nonNil(cs))
	} else if err == nil {
		var rows [][]string
		for _, x := range cs {
			kind := "confidential"
			if x.AuthMethod == config.AuthNone {
				kind = "public"
			}
			if x.Derived {
				kind += ", the proxy's"
			}
			rows = append(rows, []string{x.App, x.ID, orDash(x.Name), kind + " (" + x.AuthMethod + ")", strings.Join(x.GrantTypes, " "), orDash(strings.Join(x.RedirectURIs, " "))})
		}
		err = table(c.stdout, "APP\tCLIENT\tNAME\tKIND\tGRANTS\tREDIRECT URIS", rows)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "aero2 clients list: %v\n", err)
		return 1
	}
	return 0
}

func runKeysList(ctx context.Context, c *invocation, a *server.Admin) error {
	ks, err := a.Keys(ctx, c.flags.app)
	if err != nil {
		return err
	}
	if c.flags.json {
		return printJSON(c.stdout, nonNil(ks))
	}
	var rows [][]string
	for _, k := range ks {
		rows = append(rows, []string{k.App, k.ID, k.State, when(k.CreatedAt), when(k.ActivatedAt), when(k.RetiredAt)})
	}
	return table(c.stdout, "APP\tKID\tSTATE\tCREATED\tCURRENT SINCE\tRETIRED", rows)
}

func runKeysRotate(ctx context.Context, c *invocation) int {
	cfg, closeAudit, code := prepareAdmin(c)
	if cfg == nil {
		return code
	}
	defer closeAudit()
	// One event per application rotated: its target the key that became
	// current (a key ID is public: the JWKS publishes it).
	told := false
	err := server.RotateKeys(ctx, cfg, c.flags.app, c.stdout, func(app, kid string, err error) {
		told = true
		c.record(ctx, app, err, func(e *audit.Event) { e.Target = kid })
	})
	if err != nil {
		if !told {
			c.record(ctx, "", err) // the store, or --app, failed first
		}
		printErr(c.stderr, err)
		return 1
	}
	return 0
}

// userTarget makes the event's user its target's.
func userTarget(id string) func(*audit.Event) {
	return func(e *audit.Event) { e.User = id }
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
