package authz

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/oauthstore"
)

// AccessTokenType is the JWT typ of access tokens (RFC 9068 §2.1): it
// keeps an access token from passing as an ID token, whose typ is "JWT".
const AccessTokenType = "at+jwt"

// tokenStrategy issues RS256 JWT access tokens shaped by RFC 9068, and
// opaque HMAC-signed refresh tokens and authorization codes (fosite's).
// Access tokens are also stored, so that revocation and logout can make
// them inactive at introspection and userinfo; resource servers that
// verify them offline accept them until they expire, which is why their
// lifetime is short.
type tokenStrategy struct {
	opaque *oauth2.HMACSHAStrategyUnPrefixed
	signer *keys.JWTSigner
	issuer string
	now    func() time.Time
	// names seals the user a refresh token names; codeNames the grant
	// and expiry an authorization code names (a key of its own).
	names, codeNames cipher.AEAD
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

// AccessTokenSignature names an access token in the store: the whole JWT
// (the store keeps only its SHA-256). A record found under it proves this
// exact token was issued here — a genuine signature spliced onto a forged
// header or payload names nothing.
func (s *tokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	return token
}

// GenerateAccessToken signs an access token for the request:
// iss, sub, aud, client_id, scope, jti, iat, exp (RFC 9068 §2.2), plus
// auth_time when a user signed in.
func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	sess, ok := req.GetSession().(*oauthstore.Session)
	if !ok {
		return "", "", errors.New("authz: unexpected session type")
	}
	now := s.now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		return "", "", errors.New("authz: access token expiry not set")
	}
	aud := []string(req.GetGrantedAudience())
	if len(aud) == 0 {
		// No resource was asked for: the token is for Aero2's own
		// endpoints (userinfo). Never the client ID, which would let the
		// token pass an ID token audience check.
		aud = []string{s.issuer}
	}
	claims := &oauthstore.AccessClaims{
		Issuer:   s.issuer,
		Subject:  sess.Subject,
		Audience: aud,
		ClientID: req.GetClient().GetID(),
		JTI:      randomID(),
		IssuedAt: now.Unix(),
		Expiry:   exp.Unix(),
		Scope:    strings.Join(req.GetGrantedScopes(), " "),
	}
	if !sess.AuthTime.IsZero() {
		claims.AuthTime = sess.AuthTime.Unix()
	}
	// RFC 9449 §6.1: a token requested with a DPoP proof names its key;
	// the session records it for introspection, userinfo and (public
	// clients) the next refresh. A request without a proof unbinds.
	sess.JKT = jktFrom(ctx)
	if sess.JKT != "" {
		claims.Cnf = &oauthstore.Confirmation{JKT: sess.JKT}
	}
	// RFC 9068 §2.2.3.1: identity claims may ride in the access token. The
	// proxy and other resource servers decide policy (allowed emails,
	// domains, groups) on them without a userinfo call. They are the ID
	// token's, so they were already limited to the granted scopes.
	if sess.Claims != nil {
		x := sess.Claims.Extra
		claims.PreferredUsername, claims.Email, claims.EmailVerified, claims.Groups =
			x["preferred_username"], x["email"], x["email_verified"], x["groups"]
	}
	tok, err := s.signer.SignTyped(ctx, AccessTokenType, claims)
	if err != nil {
		return "", "", err
	}
	// The store keeps a record of the token beside it, checked against
	// these claims: handed over, they are not decoded from the token again.
	sess.Issued(tok, claims)
	return tok, tok, err
}

// ValidateAccessToken checks the JWT itself: one RS256 signature by a
// published key (alg none and HS256 are refused before any key is used),
// typ at+jwt, and the expiry. That the token exists — was issued here and
// not revoked — is the store's part: the store reads the token's claims
// only once a record under the SHA-256 of the whole JWT proves it is the
// one issued, and keeps beside it only what the JWT does not say.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, req fosite.Requester, token string) error {
	h, _, err := s.signer.Verify(ctx, token)
	if err != nil {
		return fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != AccessTokenType {
		return fosite.ErrTokenClaim.WithHint("The token is not an access token.")
	}
	if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); exp.IsZero() || !s.now().Before(exp) {
		return fosite.ErrTokenExpired
	}
	return nil
}

// Refresh tokens of a user's grant name their user: fosite's
// "<key>.<signature>" and a third part, the user's ID sealed with
// XChaCha20-Poly1305 under a key of the token secret, with the first two parts
// as associated data. So the token endpoint reads the user (is the user
// disabled?) together with the token, in one round trip, instead of after
// it (oauthstore.NamedSignature). Sealed, not merely signed: a pairwise
// client must not learn the user's ID, which its sub hides. Bound to the
// token: a name cut from one token and pasted onto another opens to
// nothing. A token without a name (an earlier release's) still works,
// with the user read after it.

// maxNameChars bounds the sealed name before it is decoded: a nonce, the
// longest user ID the store accepts and the tag, in base64url.
var maxNameChars = base64.RawURLEncoding.EncodedLen(chacha20poly1305.NonceSizeX + 256 + chacha20poly1305.Overhead)

// nameLabel separates the names' key from the token secret's other uses.
const nameLabel = "aero2 refresh token user names"

func (s *tokenStrategy) RefreshTokenSignature(_ context.Context, token string) string {
	head, opaqueSig, name, ok := s.namedParts(token, maxNameChars)
	if !ok {
		return ""
	}
	if name == "" {
		return opaqueSig
	}
	user, ok := s.openName(head, name)
	if !ok {
		return ""
	}
	return oauthstore.NamedSignature(opaqueSig, user)
}

func (s *tokenStrategy) GenerateRefreshToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	token, sig, err := s.opaque.GenerateRefreshToken(ctx, req)
	if err != nil {
		return "", "", err
	}
	sess, ok := req.GetSession().(*oauthstore.Session)
	if !ok || sess.SID == "" || sess.User() == "" {
		// No user behind the grant (authz/disabled.go): nothing to name.
		return token, sig, nil
	}
	name, err := s.sealName(token, sess.User())
	if err != nil {
		return "", "", err
	}
	return token + "." + name, oauthstore.NamedSignature(sig, sess.User()), nil
}

func (s *tokenStrategy) ValidateRefreshToken(ctx context.Context, req fosite.Requester, token string) error {
	key, sig, _, ok := splitNamed(token, maxNameChars)
	if !ok {
		return fosite.ErrInvalidTokenFormat
	}
	return s.opaque.ValidateRefreshToken(ctx, req, key+"."+sig)
}

// namedParts reads a refresh token or code: fosite's two parts (head),
// fosite's signature of them, and the sealed name ("" when there is none).
// fosite takes whatever follows the dot for the signature; only its own
// alphabet can name a record (and never spell a user or a grant).
func (s *tokenStrategy) namedParts(token string, maxName int) (head, opaqueSig, name string, ok bool) {
	key, sig, name, ok := splitNamed(token, maxName)
	if !ok {
		return "", "", "", false
	}
	head = key + "." + sig
	opaqueSig = s.opaque.Enigma.Signature(head)
	return head, opaqueSig, name, isBase64URL(opaqueSig)
}

// splitNamed parts a refresh token or code into fosite's key and
// signature and the sealed name ("" when there is none), refusing a name
// longer than maxName before anything decodes it.
func splitNamed(token string, maxName int) (key, sig, name string, ok bool) {
	key, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", "", false
	}
	sig, name, named := strings.Cut(rest, ".")
	if named && (name == "" || len(name) > maxName || strings.Contains(name, ".")) {
		return "", "", "", false
	}
	return key, sig, name, key != "" && sig != ""
}

// sealName seals userID for the token: base64url of nonce, ciphertext.
func (s *tokenStrategy) sealName(token, userID string) (string, error) {
	if len(userID) > 256 {
		return "", errors.New("authz: user ID too long to name in a refresh token")
	}
	return seal(s.names, token, []byte(userID)), nil
}

// openName returns the user ID sealed in name for the token, or false.
func (s *tokenStrategy) openName(token, name string) (string, bool) {
	user, ok := open(s.names, token, name)
	return string(user), ok
}

// seal seals plain under a, bound to token (associated data): base64url
// of a random nonce and the ciphertext.
func seal(a cipher.AEAD, token string, plain []byte) string {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, []byte(token)))
}

// open returns what name seals for token under a (never empty), or false.
func open(a cipher.AEAD, token, name string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(name)
	if err != nil || len(b) < a.NonceSize()+a.Overhead()+1 {
		return nil, false
	}
	n := a.NonceSize()
	plain, err := a.Open(nil, b[:n], b[n:], []byte(token))
	return plain, err == nil
}

// isBase64URL: s is non-empty and all base64url (unpadded).
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// newNameCipher is the AEAD that seals refresh tokens' user names:
// XChaCha20-Poly1305, whose 192-bit nonces may be drawn at random for as
// many tokens as a key will ever seal. AES-GCM's 96-bit random nonces are
// good for 2^32 seals per key (NIST SP 800-38D §8.3), which one key of a
// busy provider could reach in weeks, and a repeated nonce gives away
// the authentication key.
func newNameCipher(tokenSecret []byte) (cipher.AEAD, error) {
	return chacha20poly1305.NewX(derive(tokenSecret, nameLabel))
}

// newCodeNameCipher is the AEAD that seals codes' names: as
// newNameCipher's, under a key of its own label, so that no name of one
// kind opens as the other.
func newCodeNameCipher(tokenSecret []byte) (cipher.AEAD, error) {
	return chacha20poly1305.NewX(derive(tokenSecret, codeNameLabel))
}

// Authorization codes name their grant: fosite's "<key>.<signature>" and
// a third part, the grant (request) ID and the code's expiry sealed with
// XChaCha20-Poly1305 under a key of the token secret, with the first two
// parts as associated data (oauthstore.CodeSignature). Redeeming a code
// then takes its record (store.OpTake) and writes no "used" marker: a
// code shown again finds no record, and its name still says which grant
// to revoke (RFC 6749 §4.1.2) until it would have expired, and nothing
// after (a code found in an old log revokes nobody's grant). Sealed, not
// only signed, so the client learns nothing it was not given; bound to
// the code, so a name cut from one code and pasted onto another opens to
// nothing and that code is not found.
//
// A rolling upgrade: a code of the earlier release (two parts, no name)
// is redeemed as that release redeemed it, with its "used" marker, so
// replicas of both releases guard it alike while it lives (at most the
// code lifetime). A code of this release shown to a replica of the
// earlier one is not found there (fosite reads only two-part codes): the
// client's token request fails with invalid_grant and nothing is issued,
// so the two guards never race for one code; its next sign-in works.

// codeNameLabel separates the codes' name key from the token secret's
// other uses (nameLabel's among them).
const codeNameLabel = "aero2 authorization code grant names"

// maxCodeNameChars bounds a code's sealed name before it is decoded: a
// nonce, the expiry, the longest grant ID and the tag, in base64url.
var maxCodeNameChars = base64.RawURLEncoding.EncodedLen(chacha20poly1305.NonceSizeX + 8 + oauthstore.MaxCodeGrant + chacha20poly1305.Overhead)

// AuthorizeCodeSignature names a code in the store: for a code of this
// release the signature with the grant and expiry its name seals, "" when
// the name does not open (nothing is found, nothing revoked); for an
// earlier release's code fosite's signature alone. Only fosite's alphabet
// is a signature: a '~' in it would spell a name nobody sealed.
func (s *tokenStrategy) AuthorizeCodeSignature(_ context.Context, token string) string {
	head, opaqueSig, name, ok := s.namedParts(token, maxCodeNameChars)
	if !ok {
		return ""
	}
	if name == "" {
		return opaqueSig
	}
	grant, exp, ok := s.openCodeName(head, name)
	if !ok {
		return ""
	}
	return oauthstore.CodeSignature(opaqueSig, grant, exp)
}

// GenerateAuthorizeCode issues fosite's code with the sealed name of its
// grant and expiry. fosite sets the code's expiry just after this, to now
// plus the lifespan: the name's is that, rounded up to the second.
func (s *tokenStrategy) GenerateAuthorizeCode(ctx context.Context, req fosite.Requester) (string, string, error) {
	code, sig, err := s.opaque.GenerateAuthorizeCode(ctx, req)
	if err != nil {
		return "", "", err
	}
	grant := req.GetID()
	if grant == "" || len(grant) > oauthstore.MaxCodeGrant {
		return "", "", errors.New("authz: a code's grant ID is empty or too long to name")
	}
	exp := time.Unix(s.now().Add(s.opaque.Config.GetAuthorizeCodeLifespan(ctx)+time.Second).Unix(), 0)
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(grant)), uint64(exp.Unix()))
	return code + "." + seal(s.codeNames, code, append(plain, grant...)), oauthstore.CodeSignature(sig, grant, exp), nil
}

// openCodeName returns the grant and expiry sealed in name for the code.
func (s *tokenStrategy) openCodeName(code, name string) (string, time.Time, bool) {
	plain, ok := open(s.codeNames, code, name)
	if !ok || len(plain) <= 8 {
		return "", time.Time{}, false
	}
	return string(plain[8:]), time.Unix(int64(binary.BigEndian.Uint64(plain)), 0), true
}

// ValidateAuthorizeCode checks fosite's two parts (the name opened
// already, or the store found nothing).
func (s *tokenStrategy) ValidateAuthorizeCode(ctx context.Context, req fosite.Requester, token string) error {
	key, sig, _, ok := splitNamed(token, maxCodeNameChars)
	if !ok {
		return fosite.ErrInvalidTokenFormat
	}
	return s.opaque.ValidateAuthorizeCode(ctx, req, key+"."+sig)
}

// randomID is 128 random bits, base64url: jti values and handles.
func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHandle is 256 random bits: handles that grant something.
func randomHandle() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
