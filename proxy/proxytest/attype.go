package proxytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// zitadel's provider signs JWT access tokens with typ "JWT", like its ID
// tokens. RFC 9068 §2.1 gives access tokens typ "at+jwt", which Aero2's
// provider sets and the proxy requires (§4), so that an ID token cannot
// pass for an access token. typedAccessTokens makes the test provider
// speak RFC 9068: it re-signs the access token of every token response
// with the provider's own key as at+jwt (claims unchanged, so
// introspection and revocation still find it), and re-signs the ID token
// with the at_hash of the new access token (OIDC Core §3.1.3.6).
func (o *OP) typedAccessTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if b, err := o.retype(r.Context(), body); err == nil {
				body = b
			} else {
				rec.Code, body = http.StatusInternalServerError, []byte(err.Error())
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

func (o *OP) retype(ctx context.Context, body []byte) ([]byte, error) {
	var resp map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&resp); err != nil {
		return nil, err
	}
	at, _ := resp["access_token"].(string)
	if strings.Count(at, ".") != 2 {
		return body, nil
	}
	at, err := o.resign(ctx, at, "at+jwt", "", nil)
	if err != nil {
		return nil, err
	}
	resp["access_token"] = at
	if idt, ok := resp["id_token"].(string); ok {
		sum := sha256.Sum256([]byte(at))
		idt, err = o.resign(ctx, idt, "JWT", "", func(c map[string]any) {
			if _, ok := c["at_hash"]; ok {
				c["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
			}
		})
		if err != nil {
			return nil, err
		}
		resp["id_token"] = idt
	}
	return json.Marshal(resp)
}

// resign signs a JWT's payload again with the provider's key, under typ
// and key ID kid ("": the key's own), after edit (when set) has changed
// its claims.
func (o *OP) resign(ctx context.Context, jwt, typ, kid string, edit func(map[string]any)) (string, error) {
	key, err := o.storage.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt+"..", ".")[1])
	if err != nil {
		return "", err
	}
	if edit != nil {
		var c map[string]any
		d := json.NewDecoder(bytes.NewReader(payload))
		d.UseNumber()
		if err := d.Decode(&c); err != nil {
			return "", err
		}
		edit(c)
		if payload, err = json.Marshal(c); err != nil {
			return "", err
		}
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	if kid == "" {
		kid = key.ID()
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: key.Key(), KeyID: kid}}, opts)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Resign is what a forger holding the provider's key could do, or the
// provider itself signing something else: the token's claims signed again
// under header typ ("" for none), edited by edit when set.
func (o *OP) Resign(t testing.TB, jwt, typ string, edit func(claims map[string]any)) string {
	t.Helper()
	out, err := o.resign(context.Background(), jwt, typ, "", edit)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ResignKID signs an access token's claims again with the provider's key
// but under another key ID, one the provider's JWKS does not list.
func (o *OP) ResignKID(t testing.TB, jwt, kid string) string {
	t.Helper()
	out, err := o.resign(context.Background(), jwt, "at+jwt", kid, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countJWKS counts the requests for the provider's JWKS.
func (o *OP) countJWKS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			o.jwksFetches.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// JWKSFetches is how many times the provider's JWKS has been fetched.
func (o *OP) JWKSFetches() int { return int(o.jwksFetches.Load()) }
