package oidc

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aero2/aero2/federation"
)

// MicrosoftAuthority is Microsoft Entra ID's global (public cloud) host.
const MicrosoftAuthority = "https://login.microsoftonline.com"

// consumersTenant is the tenant of every personal Microsoft account.
const consumersTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// MicrosoftConfig is the `config:` of a `type: microsoft` identity
// provider: Microsoft Entra ID (formerly Azure AD) through its v2.0
// OpenID Connect endpoints.
type MicrosoftConfig struct {
	// Tenant is the directory (tenant) ID, a GUID, for an application
	// that only its own organisation uses. For a multi-tenant application:
	// "organizations" (any work or school account), "common" (those and
	// personal accounts) or "consumers" (personal accounts only).
	Tenant string `yaml:"tenant"`
	// AllowedTenants, for organizations or common, admits only accounts
	// of these tenant IDs. Without it any Entra ID tenant can sign in.
	AllowedTenants []string `yaml:"allowed_tenants"`
	ClientID       string   `yaml:"client_id"`
	ClientSecret   string   `yaml:"client_secret"`
	// Scopes default to openid profile email.
	Scopes []string `yaml:"scopes"`
	// GroupsClaim defaults to groups (group object IDs, when the app
	// registration's token configuration adds them).
	GroupsClaim string            `yaml:"groups_claim"`
	AuthParams  map[string]string `yaml:"auth_params"`
	Timeout     time.Duration     `yaml:"timeout"`
	// Authority defaults to https://login.microsoftonline.com; set it for
	// a national cloud (https://login.microsoftonline.us, …).
	Authority string `yaml:"authority"`
}

// Open validates the config. It does not call the network.
func (m *MicrosoftConfig) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	authority := strings.TrimSuffix(m.Authority, "/")
	if authority == "" {
		authority = MicrosoftAuthority
	}
	tenant := strings.ToLower(m.Tenant)
	base := Config{
		Issuer: authority + "/" + tenant + "/v2.0", ClientID: m.ClientID, ClientSecret: m.ClientSecret,
		Scopes: m.Scopes, AuthParams: m.AuthParams, Timeout: m.Timeout, GroupsClaim: m.GroupsClaim,
	}
	conn, ps := base.build(env, "authority")
	multi := tenant == "organizations" || tenant == "common" || tenant == "consumers"
	if !multi && !guidRE.MatchString(tenant) {
		// A domain name would work for sign-in, but the tokens name the
		// tenant by ID: the issuer would never match.
		ps = append(ps, env.Problem("tenant", "expected the directory (tenant) ID, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or organizations, common or consumers; got %q", m.Tenant))
	}
	allowed := make([]string, 0, len(m.AllowedTenants))
	for i, t := range m.AllowedTenants {
		t = strings.ToLower(t)
		if !guidRE.MatchString(t) {
			ps = append(ps, env.Problem(fmt.Sprintf("allowed_tenants[%d]", i), "expected a tenant ID (a GUID), got %q", m.AllowedTenants[i]))
		}
		allowed = append(allowed, t)
	}
	if len(allowed) > 0 && !multi {
		ps = append(ps, env.Problem("allowed_tenants", "only for tenant organizations or common; a single tenant admits only its own accounts"))
	}
	if len(ps) > 0 {
		return nil, ps
	}
	if tenant == "consumers" {
		allowed = []string{consumersTenant}
	}
	if multi {
		// The multi-tenant discovery documents name the issuer as a
		// template; every token's iss must then be the template filled
		// with the token's own tid, and the tid an admitted one.
		conn.discoveryIssuer = authority + "/{tenantid}/v2.0"
		conn.checkIssuer = func(iss string, c claims) error { return checkTenant(authority, allowed, iss, c) }
		if len(allowed) == 0 && env.Logger != nil {
			env.Logger.Warn("microsoft identity provider admits accounts of every Entra ID tenant; set allowed_tenants to restrict it", "tenant", tenant)
		}
	}
	conn.emailVerified = microsoftEmailVerified
	return conn, nil
}

// checkTenant verifies a multi-tenant token's issuer against its tid.
func checkTenant(authority string, allowed []string, iss string, c claims) error {
	tid := c.string("tid")
	if !guidRE.MatchString(tid) {
		return fmt.Errorf("token without a tenant ID (tid %q)", tid)
	}
	if want := authority + "/" + tid + "/v2.0"; iss != want {
		return fmt.Errorf("issuer %q is not the token's tenant's (%q)", iss, want)
	}
	if len(allowed) > 0 && !slices.Contains(allowed, tid) {
		return fmt.Errorf("account of tenant %s, which is not allowed: %w", tid, federation.ErrDenied)
	}
	return nil
}

// microsoftEmailVerified: Entra ID's `email` claim is whatever an
// administrator of the account's tenant typed, unverified ("nOAuth"). It
// counts as verified only when the token says so: the optional claim
// xms_edov (the email's domain is verified by its tenant) or an explicit
// email_verified.
func microsoftEmailVerified(c claims) bool {
	return c.bool("xms_edov") || c.bool("email_verified")
}
