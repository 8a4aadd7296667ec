package proxy

import (
	"fmt"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/email"
)

// Policy decides who may use a route. It is compiled once from the
// configuration; Allows is read-only and safe for concurrent use.
//
// Semantics (docs/proxy.md): a public route admits everyone, signed in or
// not. Otherwise the user must be signed in, and then passes when no
// allow-list is given, or when any entry of any list matches (any-of
// within a list and across lists). A list that is given but empty matches
// nobody (config validation refuses one in a file). Emails and domains
// match only a verified email (email_verified: true): an unverified
// address proves nothing about who holds it. A bearer token a client got
// for itself (Identity.Client) passes only where the route allows client
// credentials, and then under the same lists.
type Policy struct {
	Public  bool
	clients bool            // allow_client_credentials
	emails  map[string]bool // "local@domain", local part lower-cased too
	domains map[string]bool
	groups  map[string]bool
	claims  map[string]map[string]bool
}

// compilePolicy parses the allow-lists strictly; problems name the bad
// entries by path.
func compilePolicy(cfg *config.Config, p config.Policy, path string) (*Policy, config.Problems) {
	var ps config.Problems
	pol := &Policy{Public: p.Public, clients: p.AllowClientCredentials}
	// A list given, even empty, is a list: nil means "not given".
	if p.AllowedEmails != nil {
		pol.emails = map[string]bool{}
	}
	for i, e := range p.AllowedEmails {
		a, err := email.Parse(e)
		if err != nil {
			ps = append(ps, cfg.Problem(fmt.Sprintf("%s.allowed_emails[%d]", path, i), "expected a plain address such as alice@example.com, got %q", e))
			continue
		}
		pol.emails[strings.ToLower(a.Local)+"@"+a.Domain] = true
	}
	if p.AllowedDomains != nil {
		pol.domains = map[string]bool{}
	}
	for i, d := range p.AllowedDomains {
		// A domain is valid when it makes a valid address.
		a, err := email.Parse("x@" + strings.TrimPrefix(d, "@"))
		if err != nil || strings.HasPrefix(d, "@") {
			ps = append(ps, cfg.Problem(fmt.Sprintf("%s.allowed_domains[%d]", path, i), "expected a domain such as example.com, got %q", d))
			continue
		}
		pol.domains[a.Domain] = true
	}
	if p.AllowedGroups != nil {
		pol.groups = map[string]bool{}
	}
	for i, g := range p.AllowedGroups {
		if g == "" {
			ps = append(ps, cfg.Problem(fmt.Sprintf("%s.allowed_groups[%d]", path, i), "empty group name"))
		}
		pol.groups[g] = true
	}
	if p.AllowedClaims != nil {
		pol.claims = map[string]map[string]bool{}
	}
	for k, vs := range p.AllowedClaims {
		pol.claims[k] = map[string]bool{}
		for _, v := range vs {
			pol.claims[k][v] = true
		}
	}
	return pol, ps
}

// open reports whether any signed-in user passes.
func (p *Policy) open() bool {
	return p.emails == nil && p.domains == nil && p.groups == nil && p.claims == nil
}

// Allows reports whether a signed-in user with identity id may pass. It
// does not consider Public: callers admit public routes before asking.
func (p *Policy) Allows(id *Identity) bool {
	if id == nil || id.Subject == "" {
		return false
	}
	if id.Client != "" && !p.clients {
		return false // a route for people: no token without a user
	}
	if p.open() {
		return true
	}
	if id.EmailVerified && (p.emails != nil || p.domains != nil) {
		if a, err := email.Parse(id.Email); err == nil {
			if p.emails[strings.ToLower(a.Local)+"@"+a.Domain] || p.domains[a.Domain] {
				return true
			}
		}
	}
	for _, g := range id.Groups {
		if p.groups[g] {
			return true
		}
	}
	for name, accepted := range p.claims {
		for _, v := range claimValues(id.Claims[name]) {
			if accepted[v] {
				return true
			}
		}
	}
	return false
}
