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
	"log/slog"
	"net/http"

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
	// App is the application's name; records a connector stores are
	// scoped by it.
	App string
	// Issuer is the application's base URL.
	Issuer string
	// CallbackURL is where the provider sends the browser back.
	CallbackURL string
	// InsecureDev is the config's insecure_dev.
	InsecureDev bool
	// Records is the store, for connectors that keep state of their own.
	Records store.Records
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
}
