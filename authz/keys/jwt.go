package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v3"
	fjwt "github.com/ory/fosite/token/jwt"
)

// Alg is the only algorithm Aero2 signs with and accepts.
const Alg = jose.RS256

// JWTSigner is fosite's jwt.Signer over a Manager: it signs with the
// current key and verifies with whichever published key the token's kid
// names. Tokens whose alg is anything but RS256 — "none", or HS256 with
// the public key as an HMAC secret (the algorithm-confusion attack) — are
// refused before any key is used.
type JWTSigner struct {
	Keys *Manager
	// Observe, when set, is called as each signature starts, and the
	// function it returns once it is done (signing metrics and spans).
	Observe func(ctx context.Context) (context.Context, func(error))
}

var _ fjwt.Signer = (*JWTSigner)(nil)

// Generate signs claims with the current key. The header's kid and alg are
// Aero2's to set; other header fields (typ) are kept.
func (j *JWTSigner) Generate(ctx context.Context, claims fjwt.MapClaims, header fjwt.Mapper) (raw, sig string, err error) {
	if j.Observe != nil {
		var done func(error)
		ctx, done = j.Observe(ctx)
		defer func() { done(err) }()
	}
	s, err := j.Keys.Set(ctx)
	if err != nil {
		return "", "", err
	}
	t := fjwt.NewWithClaims(Alg, claims)
	if header != nil {
		for k, v := range header.ToMap() {
			if k != "kid" && k != "alg" {
				t.Header[k] = v
			}
		}
	}
	raw, err = t.SignedString(opaque{s.Current})
	if err != nil {
		return "", "", err
	}
	return raw, raw[strings.LastIndexByte(raw, '.')+1:], nil
}

// Decode verifies the signature and the time claims (exp, iat, nbf) and
// returns the token. It does not check iss, aud or typ: callers do.
func (j *JWTSigner) Decode(ctx context.Context, token string) (*fjwt.Token, error) {
	return fjwt.ParseWithClaims(token, fjwt.MapClaims{}, func(t *fjwt.Token) (any, error) {
		if t.Method != Alg {
			return nil, fmt.Errorf("unexpected signing algorithm %q", t.Method)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, err := j.Keys.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	})
}

// Verify checks a compact JWS: one signature, RS256, by the published key
// its kid names. It returns the protected header and the payload without
// decoding the payload's claims: for a token found in the store, the
// stored record, not the payload, is what Aero2 trusts, and decoding the
// claims twice (as Decode does) is most of the cost of introspection.
func (j *JWTSigner) Verify(ctx context.Context, token string) (jose.Header, []byte, error) {
	if strings.Count(token, ".") != 2 {
		return jose.Header{}, nil, errors.New("not a compact JWS")
	}
	jws, err := jose.ParseSigned(token)
	if err != nil {
		return jose.Header{}, nil, err
	}
	if len(jws.Signatures) != 1 {
		return jose.Header{}, nil, errors.New("want exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != string(Alg) {
		return jose.Header{}, nil, fmt.Errorf("unexpected signing algorithm %q", h.Algorithm)
	}
	if h.KeyID == "" {
		return jose.Header{}, nil, errors.New("token has no kid")
	}
	k, err := j.Keys.lookup(ctx, h.KeyID)
	if err != nil {
		return jose.Header{}, nil, err
	}
	payload, err := jws.Verify(k.Public)
	if err != nil {
		return jose.Header{}, nil, err
	}
	return h, payload, nil
}

// Validate decodes the token and returns its signature part.
func (j *JWTSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := j.Decode(ctx, token); err != nil {
		return "", err
	}
	return j.GetSignature(ctx, token)
}

// Hash is SHA-256, the hash of RS256 (for at_hash and c_hash).
func (j *JWTSigner) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSignature returns the third part of a compact JWS.
func (j *JWTSigner) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("header, body and signature must all be set")
	}
	return parts[2], nil
}

// GetSigningMethodLength is SHA-256's size.
func (j *JWTSigner) GetSigningMethodLength(context.Context) int { return sha256.Size }

// opaque adapts a Key's crypto.Signer to go-jose: go-jose computes the
// signing input, the Signer signs its SHA-256.
type opaque struct{ k *Key }

func (o opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.k.Public, KeyID: o.k.ID, Algorithm: string(Alg), Use: "sig"}
}

func (o opaque) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{Alg} }

func (o opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != Alg {
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	sum := sha256.Sum256(payload)
	return o.k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// JWKS is the public key set to publish: current, next and previous keys.
func (m *Manager) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	s, err := m.Set(ctx)
	if err != nil {
		return nil, err
	}
	out := &jose.JSONWebKeySet{}
	for _, k := range s.All() {
		out.Keys = append(out.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: string(Alg), Use: "sig"})
	}
	return out, nil
}
