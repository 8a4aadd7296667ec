// Package githubfake is a stand-in for GitHub (github.com cannot be reached
// from tests) that speaks GitHub's wire format over real HTTP on loopback:
// the OAuth web flow (/login/oauth/authorize, /login/oauth/access_token with
// PKCE and GitHub's 200-with-error answers) and the REST endpoints the
// `github` connector reads, laid out as on GitHub Enterprise Server
// (<base>/api/v3/…), with Link-header pagination.
package githubfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a GitHub account.
type User struct {
	ID        int64
	Login     string
	Name      string
	AvatarURL string
	// PublicEmail is /user's `email`: the profile's public address,
	// which the connector must not trust.
	PublicEmail string
	Emails      []Email
	// Orgs maps organisation logins to membership state ("active" or
	// "pending").
	Orgs  map[string]string
	Teams []Team
}

// Email is an entry of /user/emails.
type Email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// Team is a team the user belongs to.
type Team struct {
	Org  string
	Slug string
	Name string
}

// Server is a running fake.
type Server struct {
	// URL is the web host (the connector's base_url).
	URL          string
	ClientID     string
	ClientSecret string
	HTTP         *httptest.Server

	mu     sync.Mutex
	users  map[string]*User
	next   string // login of the user who approves the next authorization
	codes  map[string]grant
	tokens map[string]string // access token → login

	// Knobs, under mu.
	deny       bool
	tokenDelay time.Duration
	onToken    func()
	// teamsPage is the page size of /user/teams (GitHub's default 30).
	teamsPage int
	// nextLink, when set, replaces the rel="next" link of paginated
	// answers (a hostile API answer).
	nextLink string
	// userPad pads /user's answer with a bio of this many bytes.
	userPad int
	// userRaw, when set, is /user's whole answer (malformed JSON, …).
	userRaw string
}

type grant struct {
	login       string
	redirectURI string
	challenge   string
	expires     time.Time
}

// Start runs the fake with the given users; the first approves by default.
func Start(t testing.TB, users ...User) *Server {
	t.Helper()
	s := &Server{
		ClientID: "Iv1.fake" + strings.ToLower(rand.Text()[:8]), ClientSecret: rand.Text(),
		users: map[string]*User{}, codes: map[string]grant{}, tokens: map[string]string{}, teamsPage: 30,
	}
	for i := range users {
		u := users[i]
		s.users[u.Login] = &u
		if i == 0 {
			s.next = u.Login
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.accessToken)
	mux.HandleFunc("GET /api/v3/user", s.api(s.user))
	mux.HandleFunc("GET /api/v3/user/emails", s.api(s.emails))
	mux.HandleFunc("GET /api/v3/user/teams", s.api(s.teams))
	mux.HandleFunc("GET /api/v3/user/memberships/orgs/{org}", s.api(s.membership))
	s.HTTP = httptest.NewServer(mux)
	s.URL = s.HTTP.URL
	t.Cleanup(s.HTTP.Close)
	return s
}

// SignInAs makes login the user who approves the next authorizations.
func (s *Server) SignInAs(login string) { s.mu.Lock(); s.next = login; s.mu.Unlock() }

// Deny makes the user refuse the authorization (error=access_denied).
func (s *Server) Deny(v bool) { s.mu.Lock(); s.deny = v; s.mu.Unlock() }

// TokenDelay holds every token request for d.
func (s *Server) TokenDelay(d time.Duration) { s.mu.Lock(); s.tokenDelay = d; s.mu.Unlock() }

// OnToken makes every token request run fn before it is answered (nil:
// nothing): a test's way to act in the middle of Aero2's callback.
func (s *Server) OnToken(fn func()) { s.mu.Lock(); s.onToken = fn; s.mu.Unlock() }

// TeamsPageSize sets how many teams one /user/teams page holds.
func (s *Server) TeamsPageSize(n int) { s.mu.Lock(); s.teamsPage = n; s.mu.Unlock() }

// UserAnswer makes /user answer raw, or (raw empty) pad its answer with
// pad bytes: malformed and oversized answers.
func (s *Server) UserAnswer(raw string, pad int) {
	s.mu.Lock()
	s.userRaw, s.userPad = raw, pad
	s.mu.Unlock()
}

// NextLink makes paginated answers point their next page at u.
func (s *Server) NextLink(u string) { s.mu.Lock(); s.nextLink = u; s.mu.Unlock() }

// Code issues an authorization code as if the current user approved a
// request with this redirect URI and PKCE challenge (the benchmark uses it
// to skip the browser round trip).
func (s *Server) Code(redirectURI, challenge string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := strings.ToLower(rand.Text())[:20]
	s.codes[code] = grant{login: s.next, redirectURI: redirectURI, challenge: challenge, expires: time.Now().Add(10 * time.Minute)}
	return code
}

// authorize is the consent page, approved (or refused) at once.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID {
		http.Error(w, "The client_id passed is not valid.", http.StatusNotFound)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "The redirect_uri MUST match the registered callback URL for this application.", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	s.mu.Lock()
	deny := s.deny
	s.mu.Unlock()
	if deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user has denied your application access.")
		back.Set("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied")
	} else {
		if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
			http.Error(w, "code_challenge_method must be S256", http.StatusBadRequest)
			return
		}
		back.Set("code", s.Code(redirect.String(), q.Get("code_challenge")))
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// accessToken redeems a code. Like GitHub, it answers errors with HTTP 200
// and an `error` field, form-encoded unless JSON is asked for.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	// The form is read before any delay: only then does the server notice
	// a client that gives up, and end the wait.
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	delay, onToken := s.tokenDelay, s.onToken
	s.mu.Unlock()
	if onToken != nil {
		onToken()
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	f := r.PostForm
	reply := func(v url.Values) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			m := map[string]string{}
			for k := range v {
				m[k] = v.Get(k)
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			json.NewEncoder(w).Encode(m)
			return
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		w.Write([]byte(v.Encode()))
	}
	fail := func(code, desc string) {
		reply(url.Values{"error": {code}, "error_description": {desc}, "error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + strings.ReplaceAll(code, "_", "-")}})
	}
	if f.Get("client_id") != s.ClientID || subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(s.ClientSecret)) != 1 {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	s.mu.Lock()
	g, ok := s.codes[f.Get("code")]
	delete(s.codes, f.Get("code")) // single use
	s.mu.Unlock()
	if !ok || time.Now().After(g.expires) {
		fail("bad_verification_code", "The code passed is incorrect or expired.")
		return
	}
	if f.Get("redirect_uri") != g.redirectURI {
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			fail("invalid_grant", "The code_verifier does not match the code_challenge.")
			return
		}
	}
	tok := "gho_" + strings.ReplaceAll(rand.Text(), "=", "")
	s.mu.Lock()
	s.tokens[tok] = g.login
	s.mu.Unlock()
	reply(url.Values{"access_token": {tok}, "scope": {"read:org,read:user,user:email"}, "token_type": {"bearer"}})
}

// api authenticates a REST request ("Bearer" or the older "token").
func (s *Server) api(fn func(w http.ResponseWriter, r *http.Request, u *User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			tok, _ = strings.CutPrefix(auth, "token ")
		}
		s.mu.Lock()
		u := s.users[s.tokens[tok]]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
		if tok == "" || u == nil {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`))
			return
		}
		fn(w, r, u)
	}
}

func (s *Server) user(w http.ResponseWriter, _ *http.Request, u *User) {
	s.mu.Lock()
	raw, pad := s.userRaw, s.userPad
	s.mu.Unlock()
	if raw != "" {
		w.Write([]byte(raw))
		return
	}
	var email any
	if u.PublicEmail != "" {
		email = u.PublicEmail
	}
	json.NewEncoder(w).Encode(map[string]any{
		"login": u.Login, "id": u.ID, "node_id": "U_" + strconv.FormatInt(u.ID, 36), "avatar_url": u.AvatarURL,
		"type": "User", "site_admin": false, "name": u.Name, "email": email,
		"html_url": s.URL + "/" + u.Login, "created_at": "2015-01-01T00:00:00Z",
		"bio": strings.Repeat("x", pad),
	})
}

func (s *Server) emails(w http.ResponseWriter, _ *http.Request, u *User) {
	out := make([]map[string]any, 0, len(u.Emails))
	for _, e := range u.Emails {
		out = append(out, map[string]any{"email": e.Email, "primary": e.Primary, "verified": e.Verified, "visibility": nil})
	}
	json.NewEncoder(w).Encode(out)
}

func (s *Server) teams(w http.ResponseWriter, r *http.Request, u *User) {
	s.mu.Lock()
	size, evil := s.teamsPage, s.nextLink
	s.mu.Unlock()
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	if pp, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && pp > 0 {
		size = min(size, pp)
	}
	from, to := (page-1)*size, page*size
	from, to = min(from, len(u.Teams)), min(to, len(u.Teams))
	if to < len(u.Teams) {
		next := fmt.Sprintf("%s/api/v3/user/teams?per_page=%d&page=%d", s.URL, size, page+1)
		if evil != "" {
			next = evil
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s/api/v3/user/teams?page=%d>; rel="last"`, next, s.URL, (len(u.Teams)+size-1)/size))
	}
	out := []map[string]any{}
	for i, t := range u.Teams[from:to] {
		out = append(out, map[string]any{
			"id": from + i + 1, "slug": t.Slug, "name": t.Name, "privacy": "closed", "permission": "pull",
			"organization": map[string]any{"login": t.Org, "id": 1000 + len(t.Org)},
		})
	}
	json.NewEncoder(w).Encode(out)
}

func (s *Server) membership(w http.ResponseWriter, r *http.Request, u *User) {
	org := r.PathValue("org")
	state, ok := u.Orgs[org]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user","status":"404"}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"state": state, "role": "member",
		"organization": map[string]any{"login": org},
		"user":         map[string]any{"login": u.Login, "id": u.ID},
	})
}
