package proxy_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/config/configtest"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/store/memory"
)

func TestExpiredBearerToken(t *testing.T) {
	op := proxytest.StartOP(t)
	good, _ := op.Tokens(t)
	p := proxy.NewOIDCProvider(proxy.OIDCConfig{
		Issuer: op.Issuer, ClientID: proxytest.ClientID, ClientSecret: proxytest.ClientSecret,
		Audiences: []string{proxytest.ClientID}, TokenCache: time.Second,
	})
	if _, err := p.VerifyAccessToken(context.Background(), good); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	late := proxy.NewOIDCProvider(proxy.OIDCConfig{
		Issuer: op.Issuer, ClientID: proxytest.ClientID, ClientSecret: proxytest.ClientSecret,
		Audiences: []string{proxytest.ClientID}, Now: func() time.Time { return time.Now().Add(2 * time.Hour) },
	})
	if _, err := late.VerifyAccessToken(context.Background(), good); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("token two hours later: %v", err)
	}
	other := proxy.NewOIDCProvider(proxy.OIDCConfig{
		Issuer: op.Issuer, ClientID: proxytest.ClientID, ClientSecret: proxytest.ClientSecret, Audiences: []string{"another-app"},
	})
	if _, err := other.VerifyAccessToken(context.Background(), good); err == nil {
		t.Error("a token for another audience was accepted")
	}
}

// keySigner signs with a fresh RSA key and serves its JWKS.
func keySigner(t *testing.T) (*proxy.KeySigner, string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := (&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}).Keys[0].MarshalJSON()
		w.Write([]byte(`{"keys":[` + string(b) + `]}`))
	}))
	t.Cleanup(jwks.Close)
	s, err := proxy.NewKeySigner("https://auth.example.com", key, jose.RS256, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return s, jwks.URL
}

// assertionProxy runs a proxy, signing in at a test provider, whose route
// /app sends an assertion signed by signer; it returns the proxy's URL and
// the upstream.
func assertionProxy(t *testing.T, signer proxy.AssertionSigner) (string, *proxytest.Upstream) {
	t.Helper()
	op := proxytest.StartOP(t)
	up, _ := proxytest.StartUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	src := `
insecure_dev: true
server: {public_url: "` + base + `"}
secrets: {cookie_keys: ["` + configtest.CookieKey + `"], storage_key: "` + configtest.StorageKey + `"}
identity_providers: [{id: dev, type: dev}]
proxy: {provider: "` + op.Issuer + `", client_secret: ` + proxytest.ClientSecret + `}
routes:
  - {path: /app, upstream: "` + up.URL + `", headers: {assertion: X-Aero2-Assertion, access_token: [X-Forwarded-Access-Token]}}
`
	cfg, err := config.Parse("t.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	h, err := proxy.New(proxy.Options{Config: cfg, Store: st, Apps: []proxy.App{{Config: cfg.Apps()[0], Signer: signer}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	op.AllowRedirect(base + "/.aero2/callback")
	return srv.URL, up
}

func TestAssertionHeaderVerifiesAgainstTheJWKS(t *testing.T) {
	signer, jwksURL := keySigner(t)
	base, up := assertionProxy(t, signer)
	if status, body := browse(t, base+"/app/x"); status != 200 {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	seen := up.Last(t)
	jwt := seen.Header.Get("X-Aero2-Assertion")
	ks := oidc.NewRemoteKeySet(context.Background(), jwksURL)
	v := oidc.NewVerifier("https://auth.example.com", ks, &oidc.Config{ClientID: "urn:aero2:assertion:" + base + "/app"})
	tok, err := v.Verify(context.Background(), jwt)
	if err != nil {
		t.Fatalf("assertion %q does not verify: %v", jwt, err)
	}
	if typ := jwtHeader(t, jwt)["typ"]; typ != proxy.AssertionType {
		t.Errorf("assertion typ %q, want %q", typ, proxy.AssertionType)
	}
	var claims struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}
	tok.Claims(&claims)
	if tok.Subject != "u-alice" || claims.Email != "alice@example.com" || len(claims.Groups) != 2 {
		t.Errorf("assertion claims: sub %q %+v", tok.Subject, claims)
	}
	if seen.Header.Get("X-Forwarded-Access-Token") == "" {
		t.Error("the access token was not forwarded")
	}
	// Another route's audience does not verify, nor the route's URL
	// itself (which an access token for that origin could have).
	for _, aud := range []string{"urn:aero2:assertion:" + base + "/other", base + "/app", base} {
		other := oidc.NewVerifier("https://auth.example.com", ks, &oidc.Config{ClientID: aud})
		if _, err := other.Verify(context.Background(), jwt); err == nil {
			t.Errorf("the assertion verifies for audience %s", aud)
		}
	}
}

// mistypedSigner signs assertions as plain JWTs, the typ of ID tokens.
type mistypedSigner struct{ s jose.Signer }

func (m mistypedSigner) SignAssertion(_ context.Context, claims map[string]any) (string, error) {
	b, _ := json.Marshal(claims)
	jws, err := m.s.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// TestAssertionOfAnotherTypeIsNeverSent: the proxy fails closed when its
// signer does not type the assertion as one.
func TestAssertionOfAnotherTypeIsNeverSent(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	base, up := assertionProxy(t, mistypedSigner{js})
	if status, _ := browse(t, base+"/app/x"); status != 503 || up.Count() != 0 {
		t.Errorf("with a signer of plain JWTs: %d, upstream reached %d times", status, up.Count())
	}
}

// jwtHeader decodes a compact JWT's protected header.
func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUnknownKeyIDsFetchTheJWKSAtMostOncePerInterval: tokens naming keys
// the provider does not have, which anyone can send, cost at most one
// JWKS fetch per short interval, however many arrive and however
// concurrently; a known key ID with a forged signature costs none.
func TestUnknownKeyIDsFetchTheJWKSAtMostOncePerInterval(t *testing.T) {
	op := proxytest.StartOP(t)
	good, _ := op.Tokens(t)
	var skew atomic.Int64
	p := proxy.NewOIDCProvider(proxy.OIDCConfig{
		Issuer: op.Issuer, ClientID: proxytest.ClientID, ClientSecret: proxytest.ClientSecret,
		Audiences: []string{proxytest.ClientID}, TokenCache: time.Second,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	ctx := context.Background()
	if _, err := p.VerifyAccessToken(ctx, good); err != nil {
		t.Fatalf("good token: %v", err)
	}
	refused := func(n int, tok func(i int) string) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := p.VerifyAccessToken(ctx, tok(i)); !errors.Is(err, proxy.ErrInvalidToken) {
					t.Errorf("token %d: %v, want ErrInvalidToken", i, err)
				}
			})
		}
		wg.Wait()
	}
	unknownKID := func(i int) string { return op.ResignKID(t, good, fmt.Sprintf("made-up-%d-%d", skew.Load(), i)) }
	base := op.JWKSFetches()
	refused(50, unknownKID)
	if n := op.JWKSFetches() - base; n > 1 {
		t.Errorf("50 tokens with unknown key IDs fetched the JWKS %d times, want at most 1", n)
	}
	// A known key ID whose signature does not verify is a forgery, not a
	// rotation: no fetch, even once the interval has passed.
	skew.Store(int64(11 * time.Second))
	base = op.JWKSFetches()
	parts := strings.Split(good, ".")
	refused(20, func(i int) string {
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("forged-%d", i)))
	})
	if n := op.JWKSFetches() - base; n != 0 {
		t.Errorf("forged signatures under a known key ID fetched the JWKS %d times", n)
	}
	// After the interval, unknown key IDs may fetch once more — once.
	refused(50, unknownKID)
	if n := op.JWKSFetches() - base; n != 1 {
		t.Errorf("after the interval, 50 unknown key IDs fetched the JWKS %d times, want 1", n)
	}
	// The provider's own key still verifies, from the keys in hand.
	if _, err := p.VerifyAccessToken(ctx, good); err != nil {
		t.Errorf("good token: %v", err)
	}
}

// browse gets u as a browser would: following redirects, keeping cookies;
// it returns the status and body of the page the redirects end on.
func browse(t *testing.T, u string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}
