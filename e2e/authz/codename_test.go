package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/store"
)

// withCode is form with its code replaced.
func withCode(form url.Values, code string) url.Values {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("code", code)
	return f
}

// TestHostileCodesAtTheTokenEndpoint: a code names its grant in a sealed
// third part. Every altered, truncated, moved or oversized name, and the
// code with its name cut off, is invalid_grant and revokes nothing: the
// code still redeems, its tokens outlive the same hostile codes shown
// after, and so does the grant of the code whose name was moved. The
// real code shown again revokes its tokens (RFC 6749 §4.1.2).
func TestHostileCodesAtTheTokenEndpoint(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		form, other := codeForm(e), codeForm(e)
		parts := strings.Split(form.Get("code"), ".")
		otherParts := strings.Split(other.Get("code"), ".")
		if len(parts) != 3 || len(otherParts) != 3 {
			t.Fatalf("codes %q %q: want three parts", form.Get("code"), other.Get("code"))
		}
		head := parts[0] + "." + parts[1]
		flipped := []byte(parts[2])
		flipped[len(flipped)/2] ^= 1
		hostile := map[string]string{
			"name cut off":         head,
			"another code's name":  head + "." + otherParts[2],
			"name on another code": otherParts[0] + "." + otherParts[1] + "." + parts[2],
			"name altered":         head + "." + string(flipped),
			"name truncated":       head + "." + parts[2][:len(parts[2])-3],
			"name oversized":       head + "." + strings.Repeat("A", 8<<10),
			"name in the sig":      head + "~4102444800~grant",
		}
		try := func(when string) {
			t.Helper()
			for name, code := range hostile {
				got, err := postToken(e, withCode(form, code))
				if err != nil || got.Status != http.StatusBadRequest || got.Error != "invalid_grant" {
					t.Errorf("%s, %s: %v %v, want invalid_grant", when, name, err, got)
				}
			}
		}
		try("before the redemption")
		winner, err := postToken(e, form)
		if err != nil || winner.Status != http.StatusOK {
			t.Fatalf("the code after hostile ones: %v %v", err, winner)
		}
		try("after the redemption")
		// The access token only: a refresh here would rotate the
		// refresh token, which the last check needs unused.
		if !activeForOwner(e, winner.AccessToken) {
			t.Fatal("hostile codes revoked the grant")
		}
		if again, err := postToken(e, form); err != nil || again.Error != "invalid_grant" {
			t.Fatalf("the code again: %v %v", err, again)
		}
		if w := working(e, winner); len(w) > 0 {
			t.Fatalf("after the code was shown again, still working: %v", w)
		}
		// Nor did its name, pasted onto this code, revoke the other
		// code's grant.
		if got, err := postToken(e, other); err != nil || got.Status != http.StatusOK {
			t.Fatalf("the other code: %v %v", err, got)
		}
	})
}

// TestConcurrentCodeRedemptions: one code redeemed by many requests at
// once gets exactly one token response; every other request is
// invalid_grant, and the code shown twice revokes the winner's tokens.
func TestConcurrentCodeRedemptions(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		for round := range 3 {
			form := codeForm(e)
			replies := make([]tokenReply, 8)
			var wg sync.WaitGroup
			for i := range replies {
				wg.Go(func() {
					r, err := postToken(e, form)
					if err != nil {
						t.Error(err)
					}
					replies[i] = r
				})
			}
			wg.Wait()
			var winners []tokenReply
			for _, r := range replies {
				switch {
				case r.Status == http.StatusOK:
					winners = append(winners, r)
				case r.Error != "invalid_grant":
					t.Errorf("round %d: a losing redemption: %v, want invalid_grant", round, r)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d token responses for one code, want 1", round, len(winners))
			}
			if w := working(e, winners...); len(w) > 0 {
				t.Fatalf("round %d: the winner's tokens survived the code shown %d times: %v", round, len(replies), w)
			}
		}
	})
}
