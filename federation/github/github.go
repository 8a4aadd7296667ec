// Package github is the `github` identity provider type: GitHub's OAuth 2.0
// web flow (with PKCE) and its REST API, on github.com or GitHub
// Enterprise Server.
//
// GitHub is not an OpenID Connect provider for users: there is no ID
// token, so who signed in is whatever the REST API says for the access
// token the code bought. The user is identified by GitHub's numeric user
// ID, which never changes, not by the login (which can be renamed and then
// registered by someone else) nor by the email.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/federation"
)

// DefaultBaseURL is github.com.
const DefaultBaseURL = "https://github.com"

// apiVersion pins the REST API's behaviour (GitHub's versioning header).
const apiVersion = "2022-11-28"

// Bounds on what GitHub's answers may cost us.
const (
	maxBody  = 1 << 20 // per response
	maxPages = 10      // of 100 entries each, for /user/teams
)

// Config is the `config:` of a `type: github` identity provider.
type Config struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// BaseURL is the web host: https://github.com (default) or a GitHub
	// Enterprise Server such as https://github.example.com.
	BaseURL string `yaml:"base_url"`
	// APIURL is the REST API's root. Default https://api.github.com for
	// github.com, <base_url>/api/v3 for GitHub Enterprise Server.
	APIURL string `yaml:"api_url"`
	// Orgs, when set, admit only members of at least one of these
	// organisations (and, for an organisation with teams, of one of those
	// teams). The user's teams in these organisations become groups
	// "<org>:<team-slug>". Needs the read:org scope, which Aero2 then
	// requests.
	Orgs []Org `yaml:"orgs"`
	// Timeout bounds each call to GitHub. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Org is an organisation whose members may sign in.
type Org struct {
	Name string `yaml:"name"`
	// Teams, when set, narrow the organisation to members of these teams
	// (slugs or names, compared case-insensitively).
	Teams []string `yaml:"teams"`
}

// Open validates the config. It does not call the network.
func (c *Config) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	var ps config.Problems
	if c.ClientID == "" {
		ps = append(ps, env.Problem("client_id", "required: the Client ID of the GitHub OAuth app"))
	}
	if c.ClientSecret == "" {
		ps = append(ps, env.Problem("client_secret", "required (give it through the environment: client_secret: \"${…}\")"))
	}
	base := strings.TrimSuffix(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	} else if p := env.CheckURL("base_url", base); p != nil {
		ps = append(ps, *p)
	}
	api := strings.TrimSuffix(c.APIURL, "/")
	switch {
	case api != "":
		if p := env.CheckURL("api_url", api); p != nil {
			ps = append(ps, *p)
		}
	case base == DefaultBaseURL:
		api = "https://api.github.com"
	default:
		api = base + "/api/v3"
	}
	if c.Timeout < 0 || c.Timeout > 2*time.Minute {
		ps = append(ps, env.Problem("timeout", "expected a positive duration of at most 2m, got %s", c.Timeout))
	}
	orgs := make([]Org, 0, len(c.Orgs))
	seen := map[string]bool{}
	for i, o := range c.Orgs {
		path := fmt.Sprintf("orgs[%d]", i)
		name := strings.ToLower(o.Name)
		switch {
		case name == "" || strings.ContainsAny(name, "/?#% "):
			ps = append(ps, env.Problem(path+".name", "expected an organisation login such as my-company, got %q", o.Name))
		case seen[name]:
			ps = append(ps, env.Problem(path+".name", "organisation %q is listed twice", o.Name))
		}
		seen[name] = true
		teams := make([]string, 0, len(o.Teams))
		for j, t := range o.Teams {
			if t == "" {
				ps = append(ps, env.Problem(fmt.Sprintf("%s.teams[%d]", path, j), "empty team name"))
			}
			teams = append(teams, strings.ToLower(t))
		}
		orgs = append(orgs, Org{Name: name, Teams: teams})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	scopes := []string{"read:user", "user:email"}
	if len(orgs) > 0 {
		scopes = append(scopes, "read:org")
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	return &connector{
		id: env.ID, api: api, orgs: orgs, client: env.Client(c.Timeout), log: log,
		oauth: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:  base + "/login/oauth/authorize",
				TokenURL: base + "/login/oauth/access_token",
				// GitHub documents client_id and client_secret as
				// form parameters.
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
	}, nil
}

var _ federation.Connector = (*connector)(nil)

type connector struct {
	id     string
	api    string
	orgs   []Org
	client *http.Client
	log    *slog.Logger
	oauth  oauth2.Config
}

func (c *connector) config(callback string) *oauth2.Config {
	cfg := c.oauth
	cfg.RedirectURL = callback
	return &cfg
}

// LoginURL is GitHub's authorize page, with state and an S256 PKCE
// challenge (GitHub supports PKCE for OAuth apps).
func (c *connector) LoginURL(_ context.Context, f federation.Flow) (string, error) {
	return c.config(f.CallbackURL).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.PKCEVerifier)), nil
}

// HandleCallback exchanges the code and asks the REST API who it is.
func (c *connector) HandleCallback(ctx context.Context, f federation.Flow, r *http.Request) (federation.Identity, error) {
	code := r.URL.Query().Get("code")
	if code == "" || len(code) > 1024 {
		return federation.Identity{}, errors.New("github: callback without a usable code")
	}
	tok, err := c.config(f.CallbackURL).Exchange(context.WithValue(ctx, oauth2.HTTPClient, c.client), code, oauth2.VerifierOption(f.PKCEVerifier))
	if err != nil {
		return federation.Identity{}, fmt.Errorf("github %s: code exchange: %w", c.id, err)
	}
	api := &apiClient{base: c.api, token: tok.AccessToken, http: c.client}

	var user struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		AvatarURL string `json:"avatar_url"`
	}
	if _, err := api.get(ctx, api.base+"/user", &user); err != nil {
		return federation.Identity{}, fmt.Errorf("github %s: %w", c.id, err)
	}
	if user.ID <= 0 {
		return federation.Identity{}, fmt.Errorf("github %s: /user without an id", c.id)
	}
	id := federation.Identity{
		Subject: strconv.FormatInt(user.ID, 10), PreferredUsername: user.Login,
		Name: user.Name, Picture: user.AvatarURL,
	}

	// /user's `email` is the public profile email: chosen by the user,
	// possibly unverified. Only the primary email, and only when GitHub
	// has verified it, is the account's.
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if _, err := api.get(ctx, api.base+"/user/emails?per_page=100", &emails); err != nil {
		return federation.Identity{}, fmt.Errorf("github %s: %w", c.id, err)
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}

	if len(c.orgs) > 0 {
		groups, err := c.authorize(ctx, api, user.Login)
		if err != nil {
			return federation.Identity{}, fmt.Errorf("github %s: %w", c.id, err)
		}
		id.Groups = groups
	}
	return id, nil
}

// authorize checks the organisation and team restrictions and returns the
// user's teams in the configured organisations as groups.
func (c *connector) authorize(ctx context.Context, api *apiClient, login string) ([]string, error) {
	teams, err := api.teams(ctx)
	if err != nil {
		return nil, err
	}
	var groups []string
	admitted := false
	for _, o := range c.orgs {
		var mine []string // the user's team slugs and names in o
		for _, t := range teams {
			if strings.EqualFold(t.Organization.Login, o.Name) {
				groups = append(groups, o.Name+":"+strings.ToLower(t.Slug))
				mine = append(mine, strings.ToLower(t.Slug), strings.ToLower(t.Name))
			}
		}
		if admitted {
			continue
		}
		if len(o.Teams) > 0 {
			for _, want := range o.Teams {
				for _, have := range mine {
					admitted = admitted || want == have
				}
			}
			continue
		}
		member, err := api.activeMember(ctx, o.Name)
		if err != nil {
			return nil, err
		}
		admitted = member
	}
	if !admitted {
		return nil, fmt.Errorf("user %s is not a member of the required organisations or teams: %w", login, federation.ErrDenied)
	}
	return groups, nil
}

// apiClient calls GitHub's REST API with the user's token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

type team struct {
	Slug         string `json:"slug"`
	Name         string `json:"name"`
	Organization struct {
		Login string `json:"login"`
	} `json:"organization"`
}

// teams lists every team of the user, following pagination.
func (a *apiClient) teams(ctx context.Context) ([]team, error) {
	var all []team
	next := a.base + "/user/teams?per_page=100"
	for page := 0; next != "" && page < maxPages; page++ {
		var batch []team
		h, err := a.get(ctx, next, &batch)
		if err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if next, err = a.nextPage(h); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// activeMember reports whether the user is an active member of org
// (GET /user/memberships/orgs/{org}: 404 when not a member; "pending"
// for an invitation not yet accepted, which does not count).
func (a *apiClient) activeMember(ctx context.Context, org string) (bool, error) {
	var m struct {
		State string `json:"state"`
	}
	_, err := a.get(ctx, a.base+"/user/memberships/orgs/"+url.PathEscape(org), &m)
	var se *statusError
	if errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusForbidden) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.State == "active", nil
}

// nextPage returns the rel="next" link of a paginated answer, or "". The
// token goes with every request, so a next link must stay on the API's
// own origin and path: a link elsewhere is refused, not followed.
func (a *apiClient) nextPage(h http.Header) (string, error) {
	for _, part := range strings.Split(h.Get("Link"), ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
		if !strings.HasPrefix(target, a.base+"/") {
			return "", fmt.Errorf("pagination link outside the API (%.100q)", target)
		}
		return target, nil
	}
	return "", nil
}

type statusError struct {
	code int
	path string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.path, e.code) }

// get fetches u (under the API base) into v and returns the headers.
func (a *apiClient) get(ctx context.Context, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	path := strings.TrimPrefix(req.URL.Path, "/api/v3")
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
		return nil, &statusError{code: res.StatusCode, path: path}
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", path, maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return res.Header, nil
}
