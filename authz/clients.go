package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/config"
)

// Client is one of an application's OAuth clients, built from the
// configuration. It is fosite's client type for every flow.
type Client struct {
	*fosite.DefaultOpenIDConnectClient
	Name                   string
	PostLogoutRedirectURIs []string
	// FirstParty clients skip the consent page.
	FirstParty bool
	Lifetimes  config.TokenLifetimes
	// Introspector clients may introspect every token; ResourceNames are
	// the audiences, besides the client's ID, that name it as a resource
	// server (see mayIntrospect).
	Introspector  bool
	ResourceNames []string

	// keys verify a private_key_jwt client's assertions (nil for other
	// methods); assertionAlg, when set, is the only alg they may use.
	keys         *clientKeys
	assertionAlg string
	// requirePAR: authorization requests only through the PAR endpoint.
	requirePAR bool
	// requireDPoP: token requests only with a DPoP proof (RFC 9449 §5.2).
	requireDPoP bool
	// backchannelURI is told when a session the client got tokens in
	// ends (Back-Channel Logout 1.0).
	backchannelURI string
	// subjects names users to this client: public, or pairwise for its
	// sector; sector checks its sector_identifier_uri (nil: none).
	subjects subjectNamer
	sector   *sectorCheck
}

var (
	_ fosite.Client                         = (*Client)(nil)
	_ fosite.OpenIDConnectClient            = (*Client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*Client)(nil)
	_ fosite.ResponseModeClient             = (*Client)(nil)
	_ oauthstore.ConsentFree                = (*Client)(nil)
)

// GetResponseModes: every client may have its response by query, fragment
// or form_post (OAuth 2.0 Form Post Response Mode); all carry iss.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
}

// SkipsConsent: a first-party client never shows the consent page
// (oauthstore.ConsentFree).
func (c *Client) SkipsConsent() bool { return c.FirstParty }

// GetEffectiveLifespan is the client's lifetime for a token type, whatever
// the grant (the configuration's lifetimes already inherit from the
// application's).
func (c *Client) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	var d time.Duration
	switch tt {
	case fosite.AccessToken:
		d = c.Lifetimes.AccessToken
	case fosite.RefreshToken:
		d = c.Lifetimes.RefreshToken
	case fosite.IDToken:
		d = c.Lifetimes.IDToken
	case fosite.AuthorizeCode:
		d = c.Lifetimes.AuthorizationCode
	}
	if d <= 0 {
		return fallback
	}
	return d
}

// clientRegistry holds an application's clients; it is read-only after
// start-up.
type clientRegistry struct {
	byID map[string]*Client
}

func newClientRegistry(app *config.Application, hasher fosite.Hasher, opts Options) (*clientRegistry, error) {
	r := &clientRegistry{byID: map[string]*Client{}}
	for i := range app.Clients {
		cc := &app.Clients[i]
		var hashed []byte
		if cc.Secret != "" {
			var err error
			if hashed, err = hasher.Hash(context.Background(), []byte(cc.Secret)); err != nil {
				return nil, err
			}
		}
		r.byID[cc.ID] = &Client{
			DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
				DefaultClient: &fosite.DefaultClient{
					ID:            cc.ID,
					Secret:        hashed,
					RedirectURIs:  cc.RedirectURIs,
					GrantTypes:    cc.GrantTypes,
					ResponseTypes: []string{"code"},
					Scopes:        cc.Scopes,
					Audience:      cc.Audience,
					Public:        cc.IsPublic(),
				},
				TokenEndpointAuthMethod: cc.TokenEndpointAuthMethod,
			},
			Name:                   cc.Name,
			PostLogoutRedirectURIs: cc.PostLogoutRedirectURIs,
			FirstParty:             cc.FirstParty,
			Lifetimes:              app.Lifetimes(cc),
			Introspector:           cc.Introspector,
			ResourceNames:          append([]string{cc.ID}, cc.ResourceNames...),
			assertionAlg:           cc.TokenEndpointAuthSigningAlg,
			requirePAR:             cc.RequirePushedAuthorizationRequests || app.RequirePushedAuthorizationRequests,
			requireDPoP:            cc.RequireDPoP,
			backchannelURI:         cc.BackchannelLogoutURI,
		}
		c := r.byID[cc.ID]
		if cc.TokenEndpointAuthMethod == config.AuthPrivateKeyJWT {
			c.keys = &clientKeys{uri: cc.JWKSURI, http: opts.HTTPClient, now: opts.Now}
			if cc.JWKS != nil {
				set, err := cc.JWKS.JSONWebKeySet()
				if err != nil {
					return nil, fmt.Errorf("client %s: jwks: %w", cc.ID, err)
				}
				c.keys.static = set
			}
		}
		c.subjects = newSubjectNamer(cc, opts.PairwiseKey)
		if c.subjects.pairwise && cc.SectorIdentifierURI != "" {
			c.sector = &sectorCheck{uri: cc.SectorIdentifierURI, redirects: cc.RedirectURIs, http: opts.HTTPClient, now: opts.Now}
		}
	}
	return r, nil
}

// GetClient finds a client; unknown IDs are fosite.ErrNotFound.
func (r *clientRegistry) GetClient(_ context.Context, id string) (fosite.Client, error) {
	if c, ok := r.byID[id]; ok {
		return c, nil
	}
	return nil, fosite.ErrNotFound
}

func (r *clientRegistry) get(id string) *Client { return r.byID[id] }

// secretHasher hashes client secrets with HMAC-SHA256 under a server key.
//
// Why not bcrypt (fosite's default): a slow hash protects guessable
// passwords, and client secrets are not passwords. The configuration only
// accepts secrets of 32 bytes or more — generated, e.g. `openssl rand
// -base64 32` — whose 192+ bits no amount of hashing speed makes guessable.
// bcrypt at cost 10 would instead spend ~50 ms of CPU on every token,
// introspection and revocation request, capping client-credentials issuance
// at a few dozen per second per core. The key (derived from
// secrets.storage_key) means a memory dump of the hashes cannot even be
// checked against candidate secrets without it. Comparison is constant-time.
type secretHasher struct{ key []byte }

var errSecretMismatch = errors.New("client secret mismatch")

func (h secretHasher) sum(data []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil)
}

func (h secretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return h.sum(data), nil
}

func (h secretHasher) Compare(_ context.Context, hash, data []byte) error {
	if len(hash) == 0 || !hmac.Equal(hash, h.sum(data)) {
		return errSecretMismatch
	}
	return nil
}
