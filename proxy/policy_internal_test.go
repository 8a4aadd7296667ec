package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aero2/aero2/config"
)

// claimsOf decodes a JSON claim set as the provider's tokens give it
// (numbers as float64, lists as []any).
func claimsOf(t *testing.T, js string) Identity {
	t.Helper()
	c := map[string]any{}
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return identityFromClaims(c)
}

func mustPolicy(t *testing.T, p config.Policy) *Policy {
	t.Helper()
	pol, ps := compilePolicy(&config.Config{}, p, "policy")
	if len(ps) > 0 {
		t.Fatalf("compile %+v: %v", p, ps)
	}
	return pol
}

// TestPolicyEveryListType: each kind of allow-list, alone and together,
// against identities that should and should not pass.
func TestPolicyEveryListType(t *testing.T) {
	alice := `{"sub":"u-alice","email":"Alice@Example.COM","email_verified":true,"groups":["admins","eng"],"dept":"r&d","level":3,"on_call":true,"teams":["blue","red"],"nested":[["x"]],"obj":{"k":"v"}}`
	unverified := `{"sub":"u-eve","email":"eve@example.com","email_verified":false,"groups":["eng"]}`
	stringVerified := `{"sub":"u-sam","email":"sam@example.com","email_verified":"true"}`
	noSubject := `{"email":"alice@example.com","email_verified":true,"groups":["admins"]}`
	subdomain := `{"sub":"u-sub","email":"x@mail.example.com","email_verified":true}`
	groupString := `{"sub":"u-gus","groups":"admins"}`
	groupNumber := `{"sub":"u-num","groups":[7],"dept":["r&d"]}`
	for _, c := range []struct {
		name   string
		policy config.Policy
		id     string
		want   bool
	}{
		{"open, signed in", config.Policy{}, unverified, true},
		{"open, no subject", config.Policy{}, noSubject, false},

		{"email: local part any case", config.Policy{AllowedEmails: []string{"alice@example.com"}}, alice, true},
		{"email: listed in upper case", config.Policy{AllowedEmails: []string{"ALICE@EXAMPLE.COM"}}, alice, true},
		{"email: unverified", config.Policy{AllowedEmails: []string{"eve@example.com"}}, unverified, false},
		{"email: verified as a string", config.Policy{AllowedEmails: []string{"sam@example.com"}}, stringVerified, true},
		{"email: another", config.Policy{AllowedEmails: []string{"bob@example.com"}}, alice, false},

		{"domain: verified", config.Policy{AllowedDomains: []string{"example.com"}}, alice, true},
		{"domain: unverified", config.Policy{AllowedDomains: []string{"example.com"}}, unverified, false},
		{"domain: a subdomain is not the domain", config.Policy{AllowedDomains: []string{"example.com"}}, subdomain, false},
		{"domain: a parent is not the domain", config.Policy{AllowedDomains: []string{"mail.example.com"}}, alice, false},
		{"domain: a sibling", config.Policy{AllowedDomains: []string{"example.org"}}, alice, false},

		{"group: member", config.Policy{AllowedGroups: []string{"admins"}}, alice, true},
		{"group: case matters", config.Policy{AllowedGroups: []string{"Admins"}}, alice, false},
		{"group: not a member", config.Policy{AllowedGroups: []string{"admins"}}, unverified, false},
		{"group: a single string claim", config.Policy{AllowedGroups: []string{"admins"}}, groupString, true},
		{"group: a number is no group", config.Policy{AllowedGroups: []string{"7"}}, groupNumber, false},

		{"claim: string", config.Policy{AllowedClaims: map[string][]string{"dept": {"r&d"}}}, alice, true},
		{"claim: other value", config.Policy{AllowedClaims: map[string][]string{"dept": {"sales"}}}, alice, false},
		{"claim: number in its JSON form", config.Policy{AllowedClaims: map[string][]string{"level": {"3"}}}, alice, true},
		{"claim: boolean in its JSON form", config.Policy{AllowedClaims: map[string][]string{"on_call": {"true"}}}, alice, true},
		{"claim: member of a list", config.Policy{AllowedClaims: map[string][]string{"teams": {"red"}}}, alice, true},
		{"claim: list member in another user", config.Policy{AllowedClaims: map[string][]string{"dept": {"r&d"}}}, groupNumber, true},
		{"claim: nested list never matches", config.Policy{AllowedClaims: map[string][]string{"nested": {"x", "[x]"}}}, alice, false},
		{"claim: object never matches", config.Policy{AllowedClaims: map[string][]string{"obj": {"v", "map[k:v]"}}}, alice, false},
		{"claim: absent", config.Policy{AllowedClaims: map[string][]string{"dept": {"r&d"}}}, unverified, false},
		{"claim: groups claim read as a claim", config.Policy{AllowedClaims: map[string][]string{"groups": {"eng"}}}, unverified, true},

		{"any of several lists", config.Policy{AllowedEmails: []string{"nobody@example.com"}, AllowedGroups: []string{"eng"}}, unverified, true},
		{"none of several lists", config.Policy{AllowedEmails: []string{"nobody@example.com"}, AllowedGroups: []string{"ops"}, AllowedClaims: map[string][]string{"dept": {"ops"}}}, alice, false},

		// A list given but empty is not "no list": it matches nobody.
		{"empty emails", config.Policy{AllowedEmails: []string{}}, alice, false},
		{"empty domains", config.Policy{AllowedDomains: []string{}}, alice, false},
		{"empty groups", config.Policy{AllowedGroups: []string{}}, alice, false},
		{"empty claims", config.Policy{AllowedClaims: map[string][]string{}}, alice, false},
		{"claim without values", config.Policy{AllowedClaims: map[string][]string{"dept": {}}}, alice, false},
	} {
		id := claimsOf(t, c.id)
		if got := mustPolicy(t, c.policy).Allows(&id); got != c.want {
			t.Errorf("%s: Allows = %v, want %v", c.name, got, c.want)
		}
	}
	if mustPolicy(t, config.Policy{}).Allows(nil) {
		t.Error("nil identity admitted")
	}
}

// TestPolicyClientCredentials: a token without a user passes only where
// the route allows client credentials, and then under the lists.
func TestPolicyClientCredentials(t *testing.T) {
	service := Identity{Subject: "reporting", Client: "reporting", Claims: map[string]any{"sub": "reporting", "client_id": "reporting"}}
	user := Identity{Subject: "u-alice", Claims: map[string]any{"sub": "u-alice", "client_id": "cli"}}
	for _, c := range []struct {
		name   string
		policy config.Policy
		id     Identity
		want   bool
	}{
		{"people route, user", config.Policy{}, user, true},
		{"people route, client", config.Policy{}, service, false},
		{"people route with a list the client matches", config.Policy{AllowedClaims: map[string][]string{"client_id": {"reporting"}}}, service, false},
		{"clients allowed, open", config.Policy{AllowClientCredentials: true}, service, true},
		{"clients allowed, the client's claim listed", config.Policy{AllowClientCredentials: true, AllowedClaims: map[string][]string{"client_id": {"reporting"}}}, service, true},
		{"clients allowed, another client listed", config.Policy{AllowClientCredentials: true, AllowedClaims: map[string][]string{"client_id": {"billing"}}}, service, false},
		{"clients allowed, users still pass", config.Policy{AllowClientCredentials: true}, user, true},
	} {
		if got := mustPolicy(t, c.policy).Allows(&c.id); got != c.want {
			t.Errorf("%s: Allows = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPolicyCompileProblems: bad entries are named by path.
func TestPolicyCompileProblems(t *testing.T) {
	_, ps := compilePolicy(&config.Config{}, config.Policy{
		AllowedEmails:  []string{"ok@example.com", "Eve <eve@example.com>", "a@b@c"},
		AllowedDomains: []string{"example.com", "@example.com", "bad domain"},
		AllowedGroups:  []string{"ok", ""},
	}, "routes[0].policy")
	want := []string{"routes[0].policy.allowed_emails[1]", "routes[0].policy.allowed_emails[2]", "routes[0].policy.allowed_domains[1]", "routes[0].policy.allowed_domains[2]", "routes[0].policy.allowed_groups[1]"}
	if len(ps) != len(want) {
		t.Fatalf("problems %v, want at %v", ps, want)
	}
	for i, p := range ps {
		if p.Path != want[i] {
			t.Errorf("problem %d at %s, want %s (%s)", i, p.Path, want[i], p.Msg)
		}
	}
	if !strings.Contains(ps[0].Msg, "plain address") {
		t.Errorf("message %q", ps[0].Msg)
	}
}
