package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v3"
	fjwt "github.com/ory/fosite/token/jwt"
)

// Alg is the default algorithm, and the one keys stored before ES256 and
// EdDSA were added sign with.
const Alg = jose.RS256

// JWTSigner is fosite's jwt.Signer over a Manager: it signs with the
// current key, in that key's algorithm, and verifies with whichever
// published key the token's kid names, in that key's algorithm only.
// Tokens whose alg is anything else — "none", HS256 with the public key as
// an HMAC secret (the algorithm-confusion attack), or RS256 under an EC
// key's kid — are refused before any key is used (RFC 8725 §2.1, §3.1).
type JWTSigner struct {
	Keys *Manager
	// Observe, when set, is called as each signature starts, and the
	// function it returns once it is done (signing metrics and spans).
	Observe func(ctx context.Context) (context.Context, func(error))
}

var _ fjwt.Signer = (*JWTSigner)(nil)

// Generate signs claims with the current key. The header's kid and alg are
// Aero2's to set; other header fields (typ, "JWT" unless given) are kept.
//
// The compact JWS (RFC 7515 §7.1) is written here, once: the header and the
// claims are each encoded to JSON once and to base64url once, into one
// buffer that the signature is appended to. (fosite's SignedString through
// go-jose encoded the claims twice and the header three times, and built a
// signer per token.) The bytes are what go-jose made: the same JSON, keys
// in order (TestGenerateWritesWhatGoJoseWrote).
func (j *JWTSigner) Generate(ctx context.Context, claims fjwt.MapClaims, header fjwt.Mapper) (raw, sig string, err error) {
	if claims == nil {
		claims = fjwt.MapClaims{}
	}
	if typ, ok := plainHeader(header); ok {
		// An ID token's header (its session's holds no more than alg):
		// written from a struct, with no map of it copied twice
		// (Headers.ToMap), built and sorted by reflection. The same bytes.
		raw, at, err := j.sign(ctx, func(k *Key) any { return typedHeader{string(k.Alg), k.ID, typ} }, map[string]any(claims))
		if err != nil {
			return "", "", err
		}
		return raw, raw[at:], nil
	}
	raw, at, err := j.sign(ctx, func(k *Key) any {
		h := map[string]any{"typ": "JWT"}
		if header != nil {
			for name, v := range header.ToMap() {
				if name != "kid" && name != "alg" {
					h[name] = v
				}
			}
		}
		h["alg"], h["kid"] = string(k.Alg), k.ID
		return h
	}, map[string]any(claims))
	if err != nil {
		return "", "", err
	}
	return raw, raw[at:], nil
}

// typedHeader is a JOSE header of alg, kid and typ, its fields in the
// order a map's JSON would write them (Generate's).
type typedHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// plainHeader is the typ of a header that holds nothing Generate writes
// beside alg, kid and typ ("JWT" unless it names a string), or false.
func plainHeader(header fjwt.Mapper) (typ string, ok bool) {
	if header == nil {
		return "JWT", true
	}
	h, ok := header.(*fjwt.Headers)
	if !ok || h == nil {
		return "", false
	}
	typ = "JWT"
	for name, v := range h.Extra {
		switch name {
		case "alg", "kid": // Aero2's to set
		case "typ":
			if typ, ok = v.(string); !ok {
				return "", false
			}
		default:
			return "", false
		}
	}
	return typ, true
}

// SignTyped signs claims, a struct that encoding/json writes, with the
// current key, under a header of alg, kid and typ. It is Generate for a
// token whose claims are known ahead (access tokens): the claims are
// encoded straight from their struct, with no map of them built first and
// none walked and sorted by reflection.
func (j *JWTSigner) SignTyped(ctx context.Context, typ string, claims any) (string, error) {
	raw, _, err := j.sign(ctx, func(k *Key) any { return typedHeader{string(k.Alg), k.ID, typ} }, claims)
	return raw, err
}

// sign writes and signs a compact JWS of the header that header gives for
// the current key and of claims; at is where the signature starts in raw.
func (j *JWTSigner) sign(ctx context.Context, header func(*Key) any, claims any) (raw string, at int, err error) {
	if j.Observe != nil {
		var done func(error)
		ctx, done = j.Observe(ctx)
		defer func() { done(err) }()
	}
	s, err := j.Keys.Set(ctx)
	if err != nil {
		return "", 0, err
	}
	k := s.Current
	hj, err := json.Marshal(header(k))
	if err != nil {
		return "", 0, fmt.Errorf("keys: JWT header: %w", err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		return "", 0, fmt.Errorf("keys: JWT claims: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(hj))+enc.EncodedLen(len(cj))+2+enc.EncodedLen(maxSignature))
	buf = enc.AppendEncode(buf, hj)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, cj)
	sb, err := opaque{k}.SignPayload(buf, k.Alg)
	if err != nil {
		return "", 0, err
	}
	buf = append(buf, '.')
	at = len(buf)
	buf = enc.AppendEncode(buf, sb)
	return string(buf), at, nil
}

// maxSignature is the longest signature Generate expects (RSA 4096): room
// for it is allocated with the token, so appending it copies nothing.
const maxSignature = 512

// Decode verifies the signature and the time claims (exp, iat, nbf) and
// returns the token. It does not check iss, aud or typ: callers do.
func (j *JWTSigner) Decode(ctx context.Context, token string) (*fjwt.Token, error) {
	return fjwt.ParseWithClaims(token, fjwt.MapClaims{}, func(t *fjwt.Token) (any, error) {
		if !slices.Contains(Algorithms, t.Method) {
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
		if t.Method != k.Alg {
			return nil, fmt.Errorf("signing algorithm %q is not its key's (%s)", t.Method, k.Alg)
		}
		// A JSONWebKey, which fosite passes to go-jose as it is (it
		// would turn a bare ed25519.PublicKey into a pointer go-jose
		// does not take).
		return &jose.JSONWebKey{Key: k.PublicKey}, nil
	})
}

// Verify checks a compact JWS: one signature, in its key's algorithm, by the published key
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
	if !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Algorithm)) {
		return jose.Header{}, nil, fmt.Errorf("unexpected signing algorithm %q", h.Algorithm)
	}
	if h.KeyID == "" {
		return jose.Header{}, nil, errors.New("token has no kid")
	}
	k, err := j.Keys.lookup(ctx, h.KeyID)
	if err != nil {
		return jose.Header{}, nil, err
	}
	if jose.SignatureAlgorithm(h.Algorithm) != k.Alg {
		return jose.Header{}, nil, fmt.Errorf("signing algorithm %q is not its key's (%s)", h.Algorithm, k.Alg)
	}
	payload, err := jws.Verify(k.verifier)
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

// Hash is the hash of the current key's algorithm, for at_hash and c_hash
// (OIDC Core §3.1.3.6): SHA-256 for RS256 and ES256, SHA-512 for EdDSA
// (Ed25519 hashes with SHA-512; go-oidc and openid-client expect it).
func (j *JWTSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	if j.alg(ctx) == jose.EdDSA {
		sum := sha512.Sum512(in)
		return sum[:], nil
	}
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// alg is the current key's algorithm (the default when the keys cannot be
// read: signing fails then anyway).
func (j *JWTSigner) alg(ctx context.Context) jose.SignatureAlgorithm {
	s, err := j.Keys.Set(ctx)
	if err != nil {
		return Alg
	}
	return s.Current.Alg
}

// HashHint is the "alg" to put in a session's ID token header so that
// fosite computes at_hash with the current key's hash: fosite reads the
// hash size from alg[2:] (handler/openid/helper.go, ComputeHash), which
// "EdDSA" has not. The header's alg is never sent as it is: Generate sets
// the real one.
func (j *JWTSigner) HashHint(ctx context.Context) string {
	if a := j.alg(ctx); a == jose.EdDSA {
		return "Ed512"
	} else {
		return string(a)
	}
}

// GetSignature returns the third part of a compact JWS.
func (j *JWTSigner) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("header, body and signature must all be set")
	}
	return parts[2], nil
}

// GetSigningMethodLength is the size of Hash.
func (j *JWTSigner) GetSigningMethodLength(ctx context.Context) int {
	if j.alg(ctx) == jose.EdDSA {
		return sha512.Size
	}
	return sha256.Size
}

// opaque adapts a Key's crypto.Signer to go-jose: go-jose computes the
// signing input, the Signer signs it in the key's algorithm.
type opaque struct{ k *Key }

func (o opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.k.PublicKey, KeyID: o.k.ID, Algorithm: string(o.k.Alg), Use: "sig"}
}

func (o opaque) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{o.k.Alg} }

func (o opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != o.k.Alg {
		return nil, fmt.Errorf("keys: key %s signs %s, not %q", o.k.ID, o.k.Alg, alg)
	}
	switch alg {
	case jose.RS256:
		sum := sha256.Sum256(payload)
		return o.k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	case jose.ES256:
		sum := sha256.Sum256(payload)
		der, err := o.k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		return ecdsaJOSE(der, 32)
	case jose.EdDSA:
		// Ed25519 signs the message itself (RFC 8037 §3.1).
		return o.k.Signer.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	return nil, fmt.Errorf("%w %q", ErrAlgorithm, alg)
}

// ecdsaJOSE turns crypto.Signer's ASN.1 ECDSA signature into JWS's: R and
// S as fixed-size big-endian integers, concatenated (RFC 7518 §3.4).
func ecdsaJOSE(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) > 0 || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 ||
		sig.R.BitLen() > 8*size || sig.S.BitLen() > 8*size {
		return nil, errors.New("keys: malformed ECDSA signature from the signer")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}

// JWKS is the public key set to publish: current, next and previous keys,
// each with its alg (kty RSA, or EC with crv P-256, or OKP with crv
// Ed25519).
func (m *Manager) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	s, err := m.Set(ctx)
	if err != nil {
		return nil, err
	}
	out := &jose.JSONWebKeySet{}
	for _, k := range s.All() {
		out.Keys = append(out.Keys, jose.JSONWebKey{Key: k.PublicKey, KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
	}
	return out, nil
}
