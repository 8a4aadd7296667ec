package authz

import (
	"context"
	"net/http"
	"slices"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
)

// Scopes Aero2 gives meaning to. Clients may be allowed others (API scopes
// for client credentials), which are granted as asked and mean what the
// resource server says.
var supportedScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// Metadata is the discovery document (OpenID Connect Discovery 1.0 §3,
// RFC 8414 §2).
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValues  []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValues     []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
}

// Metadata returns the provider's discovery document.
func (p *Provider) Metadata(ctx context.Context) Metadata {
	// What clients may authenticate with, at every endpoint that
	// authenticates them; private_key_jwt with any of AssertionAlgs.
	secretMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	algs := config.AssertionAlgs
	return Metadata{
		Issuer:                                     p.issuer,
		AuthorizationEndpoint:                      p.url("/oauth2/authorize"),
		TokenEndpoint:                              p.url("/oauth2/token"),
		UserinfoEndpoint:                           p.url("/oauth2/userinfo"),
		JWKSURI:                                    p.url("/.well-known/jwks.json"),
		EndSessionEndpoint:                         p.url("/oauth2/logout"),
		IntrospectionEndpoint:                      p.url("/oauth2/introspect"),
		RevocationEndpoint:                         p.url("/oauth2/revoke"),
		PushedAuthorizationRequestEndpoint:         p.url(parPath),
		DeviceAuthorizationEndpoint:                p.url(devicePath),
		RequirePushedAuthorizationRequests:         p.opts.Config.RequirePushedAuthorizationRequests,
		ScopesSupported:                            supportedScopes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query", "fragment", "form_post"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token", "client_credentials", config.GrantDeviceCode},
		SubjectTypesSupported:                      []string{"public", "pairwise"},
		IDTokenSigningAlgValuesSupported:           p.signingAlgs(ctx),
		TokenEndpointAuthMethodsSupported:          append(secretMethods, "none"),
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		IntrospectionEndpointAuthMethodsSupported:  secretMethods,
		IntrospectionEndpointAuthSigningAlgValues:  algs,
		RevocationEndpointAuthMethodsSupported:     append(secretMethods, "none"),
		RevocationEndpointAuthSigningAlgValues:     algs,
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
			"name", "preferred_username", "picture", "email", "email_verified", "groups"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		AuthorizationResponseIssParameterSupported: true,
		DPoPSigningAlgValuesSupported:              dpop.AlgNames(),
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
	}
}

// signingAlgs are the algorithms of the published keys, the current key's
// first: what ID tokens (and access and logout tokens) are signed with
// now, and after the next rotation, when the configured algorithm changed.
// Without the keys, the configured algorithm.
func (p *Provider) signingAlgs(ctx context.Context) []string {
	set, err := p.opts.Keys.Set(ctx)
	if err != nil {
		return []string{p.opts.Config.SigningKeys.Algorithm}
	}
	var out []string
	for _, k := range set.All() {
		if !slices.Contains(out, string(k.Alg)) {
			out = append(out, string(k.Alg))
		}
	}
	return out
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*") // public metadata
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeBody(w, p.Metadata(r.Context()))
}

// jwks publishes the next, current and previous public keys. Clients cache
// it for a few minutes: the next key is in it long before it signs.
func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := p.opts.Keys.JWKS(r.Context())
	if err != nil {
		if isUnavailable(err) {
			p.unavailable(w, r, err)
			return
		}
		p.log.Error("jwks", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeBody(w, set)
}
