package proxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
)

// TestProxyVerifiesEachSigningAlgorithm: the proxy, a client of its own
// application's provider, signs browsers in (verifying ES256 and EdDSA ID
// tokens) and admits bearer tokens signed with them; a token signed with
// the application's algorithm by another key is refused.
func TestProxyVerifiesEachSigningAlgorithm(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			up, _ := proxytest.StartUpstream(t)
			cfg := servertest.DevConfig + "signing_keys: {algorithm: " + alg + "}\n" + strings.ReplaceAll(ownProviderConfig, "UP", up.URL)
			in := servertest.Start(t, cfg, nil)
			b := servertest.NewBrowser(t)
			if pg := b.SignInDev(in.URL+"/app/x", "alice"); pg.Status != http.StatusOK || len(up.Seen()) != 1 {
				t.Fatalf("sign-in through the proxy with %s: %d %s", alg, pg.Status, pg.URL)
			}
			cc := clientcredentials.Config{ClientID: "service", ClientSecret: ownServiceSecret, TokenURL: in.URL + "/oauth2/token",
				EndpointParams: url.Values{"audience": {"aero2-proxy"}}}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := strings.Cut(tok.AccessToken, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(head)
			var h map[string]any
			json.Unmarshal(raw, &h)
			if h["alg"] != alg {
				t.Fatalf("access token header %v, want alg %s", h, alg)
			}
			if st := bearerGet(t, in.URL+"/app/x", tok.AccessToken); st != http.StatusOK {
				t.Fatalf("%s bearer token: %d", alg, st)
			}
			// The token's header and claims with another signature of the
			// right length: refused.
			parts := strings.Split(tok.AccessToken, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[0] ^= 1
			forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			if st := bearerGet(t, in.URL+"/app/x", forged); st != http.StatusUnauthorized {
				t.Fatalf("%s token with a flipped signature bit: %d, want 401", alg, st)
			}
		})
	}
}
