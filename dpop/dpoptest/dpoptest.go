// Package dpoptest makes DPoP proofs (RFC 9449) for tests, good ones and
// each kind of bad one.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/dpop"
)

// Key is a client's DPoP key.
type Key struct {
	Alg  jose.SignatureAlgorithm
	Priv crypto.Signer
	JKT  string
}

// NewKey generates a key for alg: ES256, EdDSA or RS256/PS256.
func NewKey(t testing.TB, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(&jose.JSONWebKey{Key: priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Alg: alg, Priv: priv, JKT: jkt}
}

// Options change a proof from the good one.
type Options struct {
	// Token, when set, is hashed into ath.
	Token string
	// Nonce, when set, goes in nonce.
	Nonce string
	// IAT replaces now; JTI a random one.
	IAT time.Time
	JTI string
	// Typ replaces dpop+jwt ("-" leaves it out).
	Typ string
	// Claims are set after the others (nil deletes one).
	Claims map[string]any
	// PrivateJWK puts the private key in the jwk header.
	PrivateJWK bool
	// SignWith signs with another key than the one in the header.
	SignWith *Key
	// HMACKey signs with HS256 under this secret instead.
	HMACKey []byte
}

// Proof is a proof for method and url.
func (k *Key) Proof(t testing.TB, method, url string, o Options) string {
	t.Helper()
	claims := map[string]any{"htm": method, "htu": url, "iat": time.Now().Unix(), "jti": random()}
	if !o.IAT.IsZero() {
		claims["iat"] = o.IAT.Unix()
	}
	if o.JTI != "" {
		claims["jti"] = o.JTI
	}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	for c, v := range o.Claims {
		if v == nil {
			delete(claims, c)
		} else {
			claims[c] = v
		}
	}
	payload, _ := json.Marshal(claims)
	typ := o.Typ
	if typ == "" {
		typ = dpop.ProofType
	}
	jwk := &jose.JSONWebKey{Key: k.Priv.Public()}
	if o.PrivateJWK {
		jwk = &jose.JSONWebKey{Key: k.Priv}
	}
	opts := &jose.SignerOptions{EmbedJWK: false}
	opts = opts.WithHeader("jwk", jwk)
	if typ != "-" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	var key jose.SigningKey
	switch {
	case o.HMACKey != nil:
		key = jose.SigningKey{Algorithm: jose.HS256, Key: o.HMACKey}
	case o.SignWith != nil:
		key = jose.SigningKey{Algorithm: o.SignWith.Alg, Key: o.SignWith.Priv}
	default:
		key = jose.SigningKey{Algorithm: k.Alg, Key: k.Priv}
	}
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
