package authz

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
)

func codeGrant(id string) *fosite.Request {
	req := fosite.NewRequest()
	req.ID = id
	sess := oauthstore.NewSession()
	sess.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(5*time.Minute))
	req.Session = sess
	return req
}

// TestAuthorizeCodeNamesItsGrant: a code names its grant and expiry,
// sealed (nothing of them readable in the code) and bound to the code; its
// signature carries both for the store. The code is the client's input:
// every altered, truncated, moved, oversized or malformed name names
// nothing (so nothing is found and no grant revoked by it), and a code
// without one (an earlier release's) keeps fosite's signature.
func TestAuthorizeCodeNamesItsGrant(t *testing.T) {
	s := nameStrategy(t, 7)
	ctx := t.Context()
	const grant = "4f0c2a9e-5b1d-4c3e-9a7f-0e6d2b8c1a55"
	before := time.Now()
	code, sig, err := s.GenerateAuthorizeCode(ctx, codeGrant(grant))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 || strings.Contains(code, grant) {
		t.Fatalf("code %q: want three parts and no readable grant ID", code)
	}
	got := s.AuthorizeCodeSignature(ctx, code)
	if got != sig || !strings.HasPrefix(got, parts[1]+"~") || !strings.HasSuffix(got, "~"+grant) {
		t.Fatalf("signature of the code %q, issued as %q", got, sig)
	}
	_, exp, ok := s.openCodeName(parts[0]+"."+parts[1], parts[2])
	if !ok || exp.Before(before.Add(5*time.Minute)) || exp.After(time.Now().Add(5*time.Minute+2*time.Second)) {
		t.Fatalf("the name's expiry %v, want the code's (five minutes from %v)", exp, before)
	}
	if err := s.ValidateAuthorizeCode(ctx, codeGrant(grant), code); err != nil {
		t.Fatalf("validate: %v", err)
	}

	other, _, err := s.GenerateAuthorizeCode(ctx, codeGrant("another-grant"))
	if err != nil {
		t.Fatal(err)
	}
	otherParts := strings.Split(other, ".")
	flip := func(s string, at int) string {
		b := []byte(s)
		b[at] ^= 1
		if b[at] == '.' || b[at] == '~' {
			b[at] = 'A'
		}
		return string(b)
	}
	otherKey, _, _ := nameStrategy(t, 8).GenerateAuthorizeCode(ctx, codeGrant(grant))
	// The refresh names' key over the same code: the labels keep the
	// two kinds of name apart.
	refreshName, _ := s.sealName(parts[0]+"."+parts[1], "\x00\x00\x00\x00\x7f\xff\xff\xff"+grant)
	head := parts[0] + "." + parts[1] + "."
	hostile := map[string]string{
		"another code's name":      head + otherParts[2],
		"name on another code":     otherParts[0] + "." + otherParts[1] + "." + parts[2],
		"name altered (nonce)":     head + flip(parts[2], 3),
		"name altered (middle)":    head + flip(parts[2], len(parts[2])/2),
		"name altered (tag)":       head + flip(parts[2], len(parts[2])-2),
		"signature altered":        parts[0] + "." + flip(parts[1], 4) + "." + parts[2],
		"key altered":              flip(parts[0], 4) + "." + parts[1] + "." + parts[2],
		"name truncated":           head + parts[2][:len(parts[2])-4],
		"name cut to its nonce":    head + parts[2][:32],
		"name of another key":      head + strings.Split(otherKey, ".")[2],
		"a refresh token's name":   head + refreshName,
		"name not base64":          head + "%%%%",
		"name empty":               head,
		"name too short":           head + base64.RawURLEncoding.EncodeToString([]byte("short")),
		"name oversized":           head + strings.Repeat("A", 1<<20),
		"name just over the bound": head + strings.Repeat("A", maxCodeNameChars+1),
		"a fourth part":            code + ".x",
		"plain grant as name":      head + grant,
		"name spliced in sig":      parts[0] + "." + parts[1] + "~4102444800~" + grant,
		"no key":                   "." + parts[1] + "." + parts[2],
		"no signature":             parts[0] + ".." + parts[2],
		"no dot":                   parts[0],
		"empty":                    "",
	}
	for name, bad := range hostile {
		if got := s.AuthorizeCodeSignature(ctx, bad); got != "" {
			t.Errorf("%s: signature %.60q, want none", name, got)
		}
	}

	// An earlier release's code (fosite's two parts): fosite's
	// signature, with no name; a '~' in it is no signature of ours.
	legacy, legacySig, err := s.opaque.GenerateAuthorizeCode(ctx, codeGrant(grant))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.AuthorizeCodeSignature(ctx, legacy); got != legacySig || strings.Contains(got, "~") {
		t.Fatalf("earlier release's code: signature %q, want %q", got, legacySig)
	}
	if err := s.ValidateAuthorizeCode(ctx, codeGrant(grant), legacy); err != nil {
		t.Fatalf("validate the earlier release's code: %v", err)
	}
	// A grant ID too long to name is refused at issue.
	if _, _, err := s.GenerateAuthorizeCode(ctx, codeGrant(strings.Repeat("g", oauthstore.MaxCodeGrant+1))); err == nil {
		t.Fatal("a code named an oversized grant ID")
	}
}
