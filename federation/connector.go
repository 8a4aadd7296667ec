// Package federation signs users in with external identity providers
// (Aero2 as a relying party) and turns what they say into local users and
// browser sessions.
//
// A connector speaks one identity provider's protocol. It has two methods,
// in the shape of Dex's CallbackConnector, with a context everywhere:
// LoginURL says where to send the browser, HandleCallback turns the
// provider's redirect back into an Identity. The /rp/* flow around them
// (state, browser binding, PKCE verifier, nonce, replay protection, users,
// sessions) is the same for every connector and lives here.
package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
)

// Identity is what an identity provider vouched for.
type Identity struct {
	// Subject is the provider's stable, unique ID of the account. Never
	// the email: emails change and get reassigned.
	Subject           string
	PreferredUsername string
	Name              string
	Email             string
	EmailVerified     bool
	Groups            []string
	Picture           string
}

// Flow is one sign-in attempt: what a connector needs to start it and to
// check the answer. The flow handler creates and stores it; a connector
// must not keep it.
type Flow struct {
	// State goes to the provider and comes back on the callback.
	State string
	// Nonce binds an OIDC ID token to this attempt.
	Nonce string
	// PKCEVerifier is the RFC 7636 verifier; send its S256 challenge.
	PKCEVerifier string
	// CallbackURL is <issuer>/rp/callback/<idp id>.
	CallbackURL string
}

// Connector is one configured identity provider.
type Connector interface {
	// LoginURL returns the provider URL the browser is sent to.
	LoginURL(ctx context.Context, f Flow) (string, error)
	// HandleCallback verifies the provider's answer on the callback
	// request and returns who signed in. The flow handler has already
	// matched the state against the browser and the store, and handled an
	// `error` parameter. Errors wrapping ErrDenied are the user's or the
	// provider's refusal (shown as such); others are failures.
	HandleCallback(ctx context.Context, f Flow, r *http.Request) (Identity, error)
}

// IssuerConnector is a connector whose provider has an OAuth issuer
// identifier. The flow uses it for RFC 9207: an authorization response that
// carries `iss` must carry this provider's, which stops a mix-up attack
// (RFC 9700 §4.4) where an honest provider's response is delivered to the
// callback of another.
type IssuerConnector interface {
	Connector
	// ResponseIssuer returns the issuer identifier the provider puts in the
	// `iss` parameter of its authorization responses, and whether it has
	// promised to always send it (authorization_response_iss_parameter_
	// supported in its metadata, RFC 9207 §3). An empty issuer means the
	// connector cannot know it (a multi-tenant endpoint): `iss` is then not
	// checked here and the connector checks the ID token's issuer itself.
	// It may fetch the provider's metadata.
	ResponseIssuer(ctx context.Context) (issuer string, required bool, err error)
}

// HTTPConnector is a connector that serves pages of its own (the dev
// provider's user list), mounted at <issuer>/rp/idp/<id>/.
type HTTPConnector interface {
	Connector
	Handler() http.Handler
}

// ErrDenied marks a refusal: the provider said no, or the account is
// outside what the configuration admits (organisation, hosted domain).
var ErrDenied = errors.New("sign-in refused")

// Env is what a connector gets when it opens.
type Env struct {
	// ID is the identity provider's id in the config.
	ID string
	// DisplayName is the application's name on pages.
	DisplayName string
	// Issuer is the application's base URL.
	Issuer string
	// CallbackURL is where the provider sends the browser back.
	CallbackURL string
	// InsecureDev is the config's insecure_dev.
	InsecureDev bool
	// Records is the application's store, for connectors that keep state
	// of their own.
	Records store.AppRecords
	// HTTPClient makes the connector's outbound calls. It has a timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Config and Path locate the provider in the file: report problems
	// with Config.Problem(Path+".config.<key>", …).
	Config *config.Config
	Path   string
}

// ConnectorConfig is a connector type's `config:` block. Open validates it
// and returns the connector; it must not call the network (so that
// `aero2 check` works offline): discovery and the like happen lazily.
type ConnectorConfig interface {
	Open(ctx context.Context, env Env) (Connector, error)
}

// Registry maps a connector type to a fresh, empty config of that type. It
// is built in the wiring (cmd and server), so that this package knows no
// implementation.
type Registry map[string]func() ConnectorConfig

// Provider is an opened identity provider.
type Provider struct {
	ID        string
	Name      string
	Type      string
	Connector Connector
	// LinkByEmail is the provider's link_by_email: see linkable.
	LinkByEmail bool
	// PrefixGroups is the provider's prefix_groups: its groups are
	// "<ID>:<group>" in the user's groups.
	PrefixGroups bool
}

// DefaultTimeout bounds each outbound call to a provider when its config
// sets no timeout: a provider that hangs must not hold a browser (and a
// goroutine) for ever.
const DefaultTimeout = 10 * time.Second

// Problem reports a problem with the connector's config key (a path below
// `config`, such as "client_id" or "orgs[1].name").
func (e Env) Problem(key, format string, args ...any) config.Problem {
	return e.Config.Problem(e.Path+".config."+key, format, args...)
}

// Client returns the HTTP client for the connector's outbound calls, with
// timeout (0: DefaultTimeout) on each whole call, body included. It does
// not follow redirects: a token request redirected with 307 or 308 would
// carry the client secret, the code and the PKCE verifier to wherever the
// redirect points, and a redirected API call its bearer token. Provider
// endpoints are configured or discovered, never reached by redirect.
func (e Env) Client(timeout time.Duration) *http.Client {
	c := &http.Client{}
	if e.HTTPClient != nil {
		*c = *e.HTTPClient
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c.Timeout = timeout
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		return fmt.Errorf("identity provider redirected to %s: not followed", req.URL.Redacted())
	}
	return c
}

// CheckURL accepts an absolute https URL for the provider endpoint at key,
// or plain http on a loopback host when insecure_dev is set (a provider
// started on this machine for development). Client secrets, codes and
// tokens travel to these URLs.
func (e Env) CheckURL(key, raw string) *config.Problem {
	u, err := url.Parse(raw)
	var p config.Problem
	switch {
	case raw == "":
		p = e.Problem(key, "required")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p = e.Problem(key, "expected an absolute URL such as https://idp.example.com, got %q", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && e.InsecureDev && config.IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		p = e.Problem(key, "plain http is allowed only for a loopback host with insecure_dev: true; use https")
	default:
		p = e.Problem(key, "expected an https URL, got %q", raw)
	}
	return &p
}
