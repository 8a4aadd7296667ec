package oidc

import (
	"errors"
	"testing"

	"github.com/aero2/aero2/federation"
)

func TestMicrosoftTenantCheck(t *testing.T) {
	const a = MicrosoftAuthority
	const t1, t2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	for _, c := range []struct {
		name    string
		allowed []string
		iss     string
		tid     any
		want    error // nil, ErrDenied, or errAny
	}{
		{"any tenant", nil, a + "/" + t1 + "/v2.0", t1, nil},
		{"allowed tenant", []string{t1}, a + "/" + t1 + "/v2.0", t1, nil},
		{"other tenant", []string{t1}, a + "/" + t2 + "/v2.0", t2, federation.ErrDenied},
		// A token whose iss names another tenant than its tid: an
		// attacker's tenant claiming to be an allowed one.
		{"iss and tid disagree", []string{t1}, a + "/" + t2 + "/v2.0", t1, errAny},
		{"iss of another authority", nil, "https://evil.example/" + t1 + "/v2.0", t1, errAny},
		{"no tid", nil, a + "/" + t1 + "/v2.0", nil, errAny},
		{"tid not a GUID", nil, a + "/x/v2.0", "x", errAny},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkTenant(a, c.allowed, c.iss, claims{"tid": c.tid})
			switch {
			case c.want == nil && err != nil:
				t.Errorf("refused: %v", err)
			case c.want == federation.ErrDenied && !errors.Is(err, federation.ErrDenied):
				t.Errorf("got %v, want a denial", err)
			case c.want == errAny && (err == nil || errors.Is(err, federation.ErrDenied)):
				t.Errorf("got %v, want a failure", err)
			}
		})
	}
}

var errAny = errors.New("any failure")

func TestMicrosoftEmailIsUnverifiedUnlessSaid(t *testing.T) {
	for c, want := range map[*claims]bool{
		{"email": "a@b.example"}:                            false,
		{"email": "a@b.example", "xms_edov": true}:          true,
		{"email": "a@b.example", "email_verified": "true"}:  true,
		{"email": "a@b.example", "xms_edov": "false"}:       false,
		{"email": "a@b.example", "email_verified": "yes!!"}: false,
	} {
		if got := microsoftEmailVerified(*c); got != want {
			t.Errorf("%v: verified %v, want %v", *c, got, want)
		}
	}
}
