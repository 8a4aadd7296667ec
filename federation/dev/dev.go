// Package dev is the `dev` identity provider: users declared in the config,
// a page that lists them, and no password. It exists for the quickstart,
// demos and tests, and refuses to open unless the config says
// `insecure_dev: true`.
//
// It behaves like a real provider on the wire, so it exercises the whole
// /rp flow: LoginURL sends the browser to its page, choosing a user issues
// a one-time code bound to the flow's state, and the callback redeems the
// code (atomically, through the store's Take).
package dev

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/federation"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// codeTTL is how long a chosen user's code waits for the callback.
const codeTTL = time.Minute

// Config is the `config:` of a `type: dev` identity provider.
type Config struct {
	Users []User `yaml:"users"`
}

// User is one account of the dev provider.
type User struct {
	// Subject is the account's stable ID; defaults to Username.
	Subject  string `yaml:"subject"`
	Username string `yaml:"username"`
	Name     string `yaml:"name"`
	Email    string `yaml:"email"`
	// EmailVerified defaults to true.
	EmailVerified *bool    `yaml:"email_verified"`
	Groups        []string `yaml:"groups"`
	Picture       string   `yaml:"picture"`
}

var _ federation.HTTPConnector = (*connector)(nil)

type connector struct {
	id      string
	title   string // the application's display name
	base    string // <issuer>/rp/idp/<id>
	cb      string // <issuer>/rp/callback/<id>
	users   []User
	byID    map[string]User
	records store.AppRecords
	log     *slog.Logger
}

// Open validates the users and refuses without insecure_dev.
func (c *Config) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	var ps config.Problems
	if !env.InsecureDev {
		ps = append(ps, env.Config.Problem(env.Path+".type", "the dev identity provider signs anyone in without a password: it needs insecure_dev: true, and must never run in production"))
	}
	if len(c.Users) == 0 {
		ps = append(ps, env.Config.Problem(env.Path+".config.users", "at least one user is required"))
	}
	conn := &connector{
		id: env.ID, title: env.DisplayName, base: env.Issuer + "/rp/idp/" + env.ID, cb: env.CallbackURL,
		byID: map[string]User{}, records: env.Records, log: env.Logger,
	}
	for i, u := range c.Users {
		path := fmt.Sprintf("%s.config.users[%d]", env.Path, i)
		if u.Subject == "" {
			u.Subject = u.Username
		}
		if u.Subject == "" {
			ps = append(ps, env.Config.Problem(path, "subject or username is required"))
			continue
		}
		if _, dup := conn.byID[u.Subject]; dup {
			ps = append(ps, env.Config.Problem(path, "user %q is defined twice", u.Subject))
			continue
		}
		if u.Email != "" && strings.Count(u.Email, "@") != 1 {
			ps = append(ps, env.Config.Problem(path+".email", "expected one address such as alice@example.com, got %q", u.Email))
		}
		if u.EmailVerified == nil {
			t := true
			u.EmailVerified = &t
		}
		conn.users = append(conn.users, u)
		conn.byID[u.Subject] = u
	}
	if len(ps) > 0 {
		return nil, ps
	}
	if env.Logger != nil {
		env.Logger.Warn("INSECURE: the dev identity provider is enabled: anyone who can reach Aero2 can sign in as its users; never use it in production",
			"users", len(conn.users))
	}
	return conn, nil
}

// LoginURL is the provider's own page, which lists the users.
func (c *connector) LoginURL(_ context.Context, f federation.Flow) (string, error) {
	return c.base + "/login?" + url.Values{"state": {f.State}}.Encode(), nil
}

type issued struct {
	Subject string `json:"subject"`
	State   string `json:"state"`
}

func codeKey(id, code string) string { return "dev-code:" + id + ":" + code }

// HandleCallback redeems the code. The code is bound to the state it was
// issued for, as a real provider binds a code to its redirect.
func (c *connector) HandleCallback(ctx context.Context, f federation.Flow, r *http.Request) (federation.Identity, error) {
	code := r.URL.Query().Get("code")
	if code == "" || len(code) > 128 {
		return federation.Identity{}, errors.New("dev: callback without code")
	}
	raw, err := c.records.Take(ctx, codeKey(c.id, code))
	if errors.Is(err, store.ErrNotFound) {
		return federation.Identity{}, errors.New("dev: unknown, used or expired code")
	}
	if err != nil {
		return federation.Identity{}, err
	}
	var is issued
	if err := json.Unmarshal(raw, &is); err != nil {
		return federation.Identity{}, err
	}
	if is.State != f.State {
		return federation.Identity{}, errors.New("dev: code issued for another sign-in")
	}
	u, ok := c.byID[is.Subject]
	if !ok {
		return federation.Identity{}, fmt.Errorf("dev: user %q no longer configured: %w", is.Subject, federation.ErrDenied)
	}
	return federation.Identity{
		Subject: u.Subject, PreferredUsername: u.Username, Name: u.Name,
		Email: u.Email, EmailVerified: *u.EmailVerified, Groups: u.Groups, Picture: u.Picture,
	}, nil
}

// Handler serves the user list (GET /login) and the choice (POST /login).
func (c *connector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", c.page)
	mux.HandleFunc("POST /login", c.choose)
	return mux
}

func (c *connector) page(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state == "" || len(state) > 256 {
		web.Error(w, http.StatusBadRequest, c.title, "Sign-in expired", web.ErrorData{Message: "Start the sign-in from the application.", Code: "invalid_request"})
		return
	}
	web.Render(w, http.StatusOK, "dev_login", web.Page{Title: "Development sign-in", AppName: c.title, Data: struct {
		Name   string
		Action string
		State  string
		Users  []User
	}{"Development sign-in", c.base + "/login", state, c.users}})
}

func (c *connector) choose(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		web.Error(w, http.StatusBadRequest, c.title, "Bad request", web.ErrorData{Message: "The form could not be read.", Code: "invalid_request"})
		return
	}
	state, subject := r.PostForm.Get("state"), r.PostForm.Get("user")
	if _, ok := c.byID[subject]; !ok || state == "" || len(state) > 256 {
		web.Error(w, http.StatusBadRequest, c.title, "Bad request", web.ErrorData{Message: "Choose one of the listed users.", Code: "invalid_request"})
		return
	}
	code := rand.Text()
	val, _ := json.Marshal(issued{Subject: subject, State: state})
	if err := c.records.Create(r.Context(), codeKey(c.id, code), val, codeTTL); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			web.StoreUnavailable.WritePage(w, c.title)
			return
		}
		c.log.Error("dev sign-in code not stored", "err", err)
		web.InternalError.WritePage(w, c.title)
		return
	}
	http.Redirect(w, r, c.cb+"?"+url.Values{"code": {code}, "state": {state}}.Encode(), http.StatusSeeOther)
}
