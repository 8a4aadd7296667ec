// Package dpop checks DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, proving that whoever presents a token
// also holds the private key the token is bound to. The provider checks
// them at the token and userinfo endpoints; the proxy on every request
// with a DPoP-bound token. It is a leaf: replay memory and nonces are
// the caller's.
package dpop

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Header is the request header that carries the proof; Scheme the
// Authorization scheme of a DPoP-bound token (RFC 9449 §7.1); NonceHeader
// the header a server gives nonces in (§8).
const (
	Header      = "DPoP"
	Scheme      = "DPoP"
	NonceHeader = "DPoP-Nonce"
	// ProofType is the proof's typ (§4.2).
	ProofType = "dpop+jwt"
)

// Algs are the proof algorithms accepted: asymmetric only (§4.2: "MUST
// NOT be none or an identifier for a symmetric algorithm"), as advertised
// in dpop_signing_alg_values_supported.
var Algs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AlgEd25519 is Ed25519 by its fully-specified name (RFC 9864), which
// openid-client signs its proofs with; go-jose knows only "EdDSA", so
// these proofs are verified here with crypto/ed25519.
const AlgEd25519 = "Ed25519"

// AlgNames are the accepted algorithms as advertised.
func AlgNames() []string {
	out := make([]string, 0, len(Algs)+1)
	for _, a := range Algs {
		out = append(out, string(a))
	}
	return append(out, AlgEd25519)
}

// Errors. Every refusal wraps ErrInvalidProof (error code
// invalid_dpop_proof, §5 and §7.1), except a missing or stale nonce,
// ErrUseNonce (use_dpop_nonce, §8).
var (
	ErrInvalidProof = errors.New("invalid DPoP proof")
	ErrUseNonce     = errors.New("DPoP nonce required")
	// ErrReplay is what a Replay func returns for a jti it has seen.
	ErrReplay = errors.New("DPoP proof replayed")
)

// maxProofSize bounds what is parsed: a proof is a few hundred bytes; an
// RSA-4096 JWK in the header makes it about 1.5 KB.
const maxProofSize = 8 << 10

// Verifier checks proofs. Its zero value is not usable: Replay is
// required.
type Verifier struct {
	// MaxAge is how old a proof's iat may be (default 5 minutes); Skew
	// how far in the future (default 1 minute): a proof is for one
	// request, sent now (§11.1).
	MaxAge, Skew time.Duration
	// Replay remembers jti (namespaced by the caller) until ttl has
	// passed, and returns ErrReplay when it was already there. A shared
	// store makes replicas refuse each other's replays (§11.1).
	Replay func(ctx context.Context, key string, ttl time.Duration) error
	// Nonces, when set, checks the proof's nonce (§8); nil accepts proofs
	// with or without one.
	Nonces *Nonces
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Request is what a proof must match.
type Request struct {
	// Method and URL are the request's, as the client addressed it: htm
	// and htu (§4.3). URL's query and fragment are ignored.
	Method, URL string
	// AccessToken, when the request presents one (at a resource), must
	// be hashed in the proof's ath (§4.2, §7.1).
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the JWK SHA-256 thumbprint (RFC 7638) of the proof's key:
	// what a bound token's cnf.jkt names (§6.1).
	JKT string
	JTI string
	IAT time.Time
}

// Verify checks the DPoP header values of a request: exactly one proof,
// a JWT of typ dpop+jwt signed with an asymmetric alg by the public key in
// its own jwk header, whose htm, htu, iat, jti (never seen before), ath
// (with an access token) and nonce (with Nonces) fit. It does not check
// that the key is the one a token is bound to: callers compare JKT.
func (v *Verifier) Verify(ctx context.Context, values []string, req Request) (*Proof, error) {
	if len(values) != 1 {
		// §4.3: "there is not more than one DPoP HTTP request header".
		return nil, fmt.Errorf("%w: want exactly one DPoP header, got %d", ErrInvalidProof, len(values))
	}
	raw := values[0]
	if len(raw) > maxProofSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidProof, maxProofSize)
	}
	jwk, payload, err := verifySignature(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	var c struct {
		JTI   string      `json:"jti"`
		HTM   string      `json:"htm"`
		HTU   string      `json:"htu"`
		IAT   json.Number `json:"iat"`
		ATH   *string     `json:"ath"`
		Nonce *string     `json:"nonce"`
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidProof, err)
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return nil, fmt.Errorf("%w: jti missing or longer than 256 bytes", ErrInvalidProof)
	}
	if c.HTM != req.Method {
		// §4.3: htm matches the method, exactly (methods are case-sensitive).
		return nil, fmt.Errorf("%w: htm %q, request method %s", ErrInvalidProof, c.HTM, req.Method)
	}
	if !SameURI(c.HTU, req.URL) {
		return nil, fmt.Errorf("%w: htu %q is not %s", ErrInvalidProof, c.HTU, req.URL)
	}
	iatSec, err := c.IAT.Int64()
	if err != nil {
		return nil, fmt.Errorf("%w: iat missing or not an integer", ErrInvalidProof)
	}
	now := v.now()
	iat := time.Unix(iatSec, 0)
	maxAge, skew := v.MaxAge, v.Skew
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	if skew <= 0 {
		skew = time.Minute
	}
	if iat.Before(now.Add(-maxAge)) || iat.After(now.Add(skew)) {
		return nil, fmt.Errorf("%w: iat %s is outside [now-%s, now+%s]", ErrInvalidProof, iat.UTC().Format(time.RFC3339), maxAge, skew)
	}
	if req.AccessToken != "" {
		sum := sha256.Sum256([]byte(req.AccessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if c.ATH == nil || !hmac.Equal([]byte(*c.ATH), []byte(want)) {
			return nil, fmt.Errorf("%w: ath does not hash the access token", ErrInvalidProof)
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: jwk: %v", ErrInvalidProof, err)
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if v.Nonces != nil {
		if c.Nonce == nil || !v.Nonces.Valid(*c.Nonce) {
			return nil, ErrUseNonce
		}
	}
	// Last, so that a proof refused for anything else does not use up
	// its jti. Keyed by the key and the jti: one client's jti cannot
	// block another's. Remembered for as long as the proof would be
	// accepted.
	key := jkt + "." + base64.RawURLEncoding.EncodeToString(sha256Sum(c.JTI))
	if err := v.Replay(ctx, key, maxAge+skew); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, fmt.Errorf("%w: jti already used", ErrInvalidProof)
		}
		return nil, err // the replay memory could not be asked: not the client's fault
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IAT: iat}, nil
}

// verifySignature checks that raw is a compact JWS of typ dpop+jwt,
// signed with an asymmetric algorithm by the public key in its jwk header,
// and returns that key and the payload.
func verifySignature(raw string) (*jose.JSONWebKey, []byte, error) {
	head, _, _ := strings.Cut(raw, ".")
	hb, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, nil, errors.New("malformed header")
	}
	var h struct {
		Alg string          `json:"alg"`
		Typ string          `json:"typ"`
		JWK json.RawMessage `json:"jwk"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, errors.New("malformed header")
	}
	// typ is a media type, compared without case; "application/" may be
	// left out (RFC 7515 §4.1.9).
	if typ := strings.TrimPrefix(strings.ToLower(h.Typ), "application/"); typ != ProofType {
		return nil, nil, fmt.Errorf("typ %q, want %s", h.Typ, ProofType)
	}
	if h.Alg == AlgEd25519 {
		return verifyEd25519(raw, h.JWK)
	}
	jws, err := jose.ParseSignedCompact(raw, Algs)
	if err != nil {
		return nil, nil, fmt.Errorf("not a JWS with an asymmetric algorithm: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, errors.New("want one signature")
	}
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if err := checkJWK(jwk); err != nil {
		return nil, nil, err
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %v", err)
	}
	return jwk, payload, nil
}

// checkJWK accepts a valid public key. §4.3: "the jwk JOSE Header
// Parameter does not contain a private key"; a symmetric "oct" key could
// only verify an HMAC, which Algs refuse anyway.
func checkJWK(jwk *jose.JSONWebKey) error {
	if jwk == nil || !jwk.Valid() {
		return errors.New("no valid jwk header")
	}
	if !jwk.IsPublic() {
		return errors.New("the jwk header holds a private key")
	}
	return nil
}

func verifyEd25519(raw string, rawJWK json.RawMessage) (*jose.JSONWebKey, []byte, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not a compact JWS")
	}
	var jwk jose.JSONWebKey
	if len(rawJWK) == 0 || jwk.UnmarshalJSON(rawJWK) != nil {
		return nil, nil, errors.New("no valid jwk header")
	}
	if err := checkJWK(&jwk); err != nil {
		return nil, nil, err
	}
	pub, ok := jwk.Key.(ed25519.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("alg Ed25519 with a %T key", jwk.Key)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, nil, errors.New("signature: invalid")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, errors.New("malformed payload")
	}
	return &jwk, payload, nil
}

func sha256Sum(s string) []byte { sum := sha256.Sum256([]byte(s)); return sum[:] }

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// SameURI compares an htu with the request's URI as RFC 9449 §4.3 says:
// without query and fragment, after syntax-based normalisation (RFC 3986
// §6.2.2: scheme and host case, percent-encoding case) and scheme-based
// normalisation (§6.2.3: default ports, empty path as "/").
func SameURI(htu, target string) bool {
	a, okA := normalizeURI(htu)
	b, okB := normalizeURI(target)
	return okA && okB && a == b
}

func normalizeURI(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Percent-encodings compare in upper case (RFC 3986 §6.2.2.1).
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && i+2 < len(path) {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(path[i+1 : i+3]))
			i += 2
			continue
		}
		b.WriteByte(path[i])
	}
	return scheme + "://" + host + b.String(), true
}

// Nonces are server-provided nonces (§8) that need no storage: a nonce is
// an HMAC of the time window it was issued in, so every replica with the
// same key accepts the others' and a nonce expires with its window. A
// nonce does not stop replay (jti does); it stops proofs made in advance.
type Nonces struct {
	Key []byte
	// Window is how long a nonce is handed out; it is accepted for one
	// more (default 5 minutes).
	Window time.Duration
	Now    func() time.Time
}

// Current is the nonce to give clients now.
func (n *Nonces) Current() string { return n.at(n.window()) }

// Valid reports whether nonce is the current window's or the previous'.
func (n *Nonces) Valid(nonce string) bool {
	w := n.window()
	return hmac.Equal([]byte(nonce), []byte(n.at(w))) || hmac.Equal([]byte(nonce), []byte(n.at(w-1)))
}

func (n *Nonces) window() int64 {
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	d := n.Window
	if d <= 0 {
		d = 5 * time.Minute
	}
	return now().UnixNano() / int64(d)
}

func (n *Nonces) at(w int64) string {
	m := hmac.New(sha256.New, n.Key)
	m.Write([]byte("aero2 dpop nonce\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(w))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url: a cnf.jkt value.
func Thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ParseAuthorization splits an Authorization header into its scheme
// ("Bearer" or "DPoP", as the canonical spelling; "" for others) and
// token (RFC 9449 §7.1, RFC 6750 §2.1: the scheme is case-insensitive).
func ParseAuthorization(v string) (scheme, token string) {
	s, t, ok := strings.Cut(v, " ")
	t = strings.TrimSpace(t)
	if !ok || t == "" {
		return "", ""
	}
	switch {
	case strings.EqualFold(s, "Bearer"):
		return "Bearer", t
	case strings.EqualFold(s, Scheme):
		return Scheme, t
	}
	return "", ""
}
