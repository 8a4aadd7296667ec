package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/aero2/aero2/authz/keys/ossl"
)

// The floor is the least a token endpoint can cost beside its signature:
// net/http serving a client-credentials request (basic authentication,
// the form) with a JWT of the size of Aero2's, its claims written by
// encoding/json and signed once by the signer Aero2 uses, and nothing
// else: no client registry, no fosite, no store, no logging. It runs in
// this process and is driven by the same load generator, so its share of
// the ceiling is the roof that any server written on net/http reaches on
// this machine with this load, and the gap between it and Aero2's row is
// what Aero2's own work costs. It is a measurement, not a token endpoint:
// what it issues is not kept, and the JWT is put together by hand here
// only so that no library's cost is counted in the roof.

// floorClaims are the claims of Aero2's client-credentials access token
// (oauthstore.AccessClaims), with values of the same length.
type floorClaims struct {
	Aud      []string `json:"aud"`
	ClientID string   `json:"client_id"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	Iss      string   `json:"iss"`
	Jti      string   `json:"jti"`
	Nbf      int64    `json:"nbf"`
	Scope    string   `json:"scope"`
	Sub      string   `json:"sub"`
}

// floorAnswer is RFC 6749 §5.1's answer.
type floorAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	TokenType   string `json:"token_type"`
}

// floorHandler issues tokens signed by signer to "service".
func floorHandler(signer crypto.Signer, issuer string) http.Handler {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + rand.Text() + `","typ":"at+jwt"}`))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "service" || subtle.ConstantTimeCompare([]byte(pass), []byte(serviceSecret)) != 1 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if r.PostFormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		now := time.Now().Unix()
		claims, err := json.Marshal(floorClaims{Aud: []string{issuer}, ClientID: user, Exp: now + 3600, Iat: now, Iss: issuer,
			Jti: rand.Text(), Nbf: now, Scope: r.PostFormValue("scope"), Sub: user})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b64 := base64.RawURLEncoding
		tok := make([]byte, 0, len(header)+1+b64.EncodedLen(len(claims))+1+b64.EncodedLen(256))
		tok = append(tok, header...)
		tok = append(tok, '.')
		tok = b64.AppendEncode(tok, claims)
		digest := sha256.Sum256(tok)
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tok = append(tok, '.')
		tok = b64.AppendEncode(tok, sig)
		body, err := json.Marshal(floorAnswer{AccessToken: string(tok), ExpiresIn: 3600, Scope: r.PostFormValue("scope"), TokenType: "bearer"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json;charset=UTF-8"}
		h["Cache-Control"] = []string{"no-store"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})
}

// setupFloor serves the floor on a listener of its own, beside Aero2 (t),
// signing with a key of its own on the signer Aero2 signs with in this
// build (OpenSSL with -tags openssl, else crypto/rsa).
func setupFloor(t *Target, workers int) ([]func() error, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	base, stop, err := startFloor(key)
	if err != nil {
		return nil, err
	}
	t.onClose(stop)
	return tokenOps(t.Client, base+"/oauth2/token", workers)
}

// startFloor serves the floor on a loopback port, signing with key.
func startFloor(key *rsa.PrivateKey) (base string, stop func(), err error) {
	var signer crypto.Signer = key
	if ossl.Available {
		if signer, err = ossl.New(key); err != nil {
			return "", nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	base = "http://" + ln.Addr().String()
	hs := &http.Server{Handler: floorHandler(signer, base), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return base, func() { hs.Close() }, nil
}
