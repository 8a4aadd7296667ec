package authz_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/store"
)

// withServerKeys adds keys under the test configuration's server block.
func withServerKeys(cfg, keys string) string {
	return strings.Replace(cfg, "\nserver:\n", "\nserver:\n"+keys, 1)
}

// TestRateLimitedCodeExchangeCanBeRetried: a code exchange refused by the
// client's token limit has consumed nothing — the client waits
// Retry-After and redeems the same code with the same verifier. (Checked
// after fosite's first phase, the refusal would already have deleted the
// code's PKCE challenge, and the retry would be invalid_grant.)
func TestRateLimitedCodeExchangeCanBeRetried(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, withServerKeys(providerConfig, "  rate_limits:\n    token:\n      per_client: {requests: 1, per: 2s}\n"), st)
		b := e.browser()
		first := newFlow(e.web())
		firstRes := e.login(b, first, "alice")
		second := newFlow(e.web())
		secondRes := e.response(b.Get(second.authURL))
		e.checkAuthResponse(second, secondRes)

		if _, err := e.exchange(first, firstRes); err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		_, err := e.exchange(second, secondRes)
		re, ok := err.(*oauth2.RetrieveError)
		if !ok || re.Response.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("second exchange within the limit's period: %v, want 429", err)
		}
		wait, err := strconv.Atoi(re.Response.Header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("Retry-After %q", re.Response.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(wait) * time.Second)
		tok, err := e.exchange(second, secondRes)
		if err != nil {
			t.Fatalf("retrying the refused exchange after Retry-After: %v", err)
		}
		e.verifyIDToken(second, tok)
	})
}
