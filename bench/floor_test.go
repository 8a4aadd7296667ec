package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestFloorIssuesTokensLikeAero2s: the floor is a fair roof only if it
// does what Aero2's client-credentials row does on the wire: checks the
// client's secret and the grant, and answers with a JWT access token
// signed by the key, of about the size of Aero2's, so the load generator
// reads as much and the server encodes and hashes as much.
func TestFloorIssuesTokensLikeAero2s(t *testing.T) {
	target, err := Start(context.Background(), StoreConfig("memory", "", "", ""), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	base, stop, err := startFloor(key)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	floor := &Target{URL: base, Client: target.Client, stop: func() {}}

	ours, err := clientCredentials(target, target.Client)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := clientCredentials(floor, target.Client)
	if err != nil {
		t.Fatal(err)
	}
	if a, f := len(ours.AccessToken), len(theirs.AccessToken); f < a*9/10 || f > a*11/10 {
		t.Errorf("floor's access token is %d bytes, Aero2's %d: not within 10%%", f, a)
	}
	jws, err := jose.ParseSignedCompact(theirs.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatalf("floor's token does not verify with its key: %v", err)
	}
	var claims floorClaims
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub != "service" || claims.Scope != "api" || claims.Iss != base || claims.Exp-claims.Iat != 3600 {
		t.Fatalf("floor's claims %+v (%v)", claims, err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Errorf("typ %v, want at+jwt", typ)
	}
	second, err := clientCredentials(floor, target.Client)
	if err != nil || second.AccessToken == theirs.AccessToken {
		t.Fatalf("a second token (%v) is the first again", err)
	}

	for _, c := range []struct {
		form       url.Values
		user, pass string
		want       int
	}{
		{url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret + "x", http.StatusUnauthorized},
		{url.Values{"grant_type": {"client_credentials"}}, "", "", http.StatusUnauthorized},
		{url.Values{"grant_type": {"password"}}, "service", serviceSecret, http.StatusBadRequest},
	} {
		err := floor.postForm(target.Client, "/oauth2/token", c.form, c.user, c.pass, nil)
		if err == nil || !containsStatus(err, c.want) {
			t.Errorf("%v as %q: %v, want %d", c.form, c.user, err, c.want)
		}
	}
}

// containsStatus: postForm's error names the status.
func containsStatus(err error, status int) bool {
	return strings.Contains(err.Error(), fmt.Sprintf(": %d ", status))
}
