// Package oauthstore is fosite's storage on Aero2's store: authorization
// codes, PKCE challenges, OpenID Connect sessions, access and refresh
// tokens, each scoped to one application.
//
// fosite's replay defences depend on this package keeping its contracts:
//
//   - a used authorization code still yields its grant:
//     GetAuthorizeCodeSession returns a request with the grant's ID
//     together with fosite.ErrInvalidatedAuthorizeCode, so that fosite can
//     revoke what the first use issued (RFC 6749 §4.1.2), for as long as
//     the code could have been redeemed;
//   - a rotated refresh token stays readable and GetRefreshTokenSession
//     returns it together with fosite.ErrInactiveToken, so that fosite can
//     revoke the whole family (RFC 6819 §5.2.2.3, RFC 9700 §4.14.2).
//
// Redeeming has exactly one winner: of two concurrent redemptions of one
// code or refresh token, one gets ErrConcurrentUse and issues nothing. A
// code is redeemed by taking its record (store.OpTake); a used code is
// then known by its name, which says which grant it was (CodeSignature).
// A refresh token (and a code of an earlier release, which has no name)
// is marked "used" by a marker record written with Create.
//
// Revoking a grant first writes a tombstone for it, and every write of a
// grant's tokens is guarded by the tombstone's absence in the same atomic
// batch. So a request that read a code or refresh token before its grant
// was revoked, and commits after, stores nothing: once reuse is detected no
// token of the family works, whatever the interleaving.
//
// Tokens are found by the SHA-256 of their signature, so the store never
// holds anything that could be replayed as a token.
package oauthstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/aero2/aero2/store"
)

var (
	_ fosite.Storage                     = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
)

// ErrConcurrentUse: a code or refresh token was redeemed by two requests at
// once and this one lost. It wraps the fosite error of a reused credential.
var ErrConcurrentUse = errors.New("oauthstore: credential used concurrently")

// ErrGrantRevoked: a token write found its grant revoked. It wraps
// fosite.ErrInactiveToken.
var ErrGrantRevoked = errors.New("oauthstore: grant revoked")

// ClientGetter finds the application's clients by ID.
type ClientGetter interface {
	GetClient(ctx context.Context, id string) (fosite.Client, error)
}

// Backend is what the package needs from the store: the application's
// handle (store.ForApp).
type Backend interface {
	store.AppRecords
	store.AppSets
	store.AppBatches
}

// Options configure a Store.
type Options struct {
	Backend Backend
	Clients ClientGetter
	// GrantTTL is how long grant indexes (a grant's tokens, a browser
	// session's grants) live: the longest refresh token lifetime.
	GrantTTL time.Duration
	// CodeTTL is the longest authorization code lifetime; an earlier
	// release's used-code markers live this long.
	CodeTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store implements fosite's storage interfaces for one application.
type Store struct {
	opts Options
}

// New returns the application's fosite storage.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts}
}

// expirySlack keeps records a little past their token's expiry, so that a
// late use is told "expired" by fosite's checks rather than "unknown".
const expirySlack = time.Minute

// Record keys. A prefix per kind keeps kinds apart.
func codeKey(h string) string      { return "oauth:code:" + h }
func codeUsedKey(h string) string  { return "oauth:code-used:" + h }
func pkceKey(h string) string      { return "oauth:pkce:" + h }
func oidcKey(h string) string      { return "oauth:oidc:" + h }
func accessKey(h string) string    { return "oauth:at:" + h }
func refreshKey(h string) string   { return "oauth:rt:" + h }
func refreshUsed(h string) string  { return "oauth:rt-used:" + h }
func grantIndex(id string) string  { return "oauth:grant:" + id }
func grantAccess(id string) string { return "oauth:grant-at:" + id } // before grantIndex
func grantRefr(id string) string   { return "oauth:grant-rt:" + id } // before grantIndex
func revokedKey(id string) string  { return "oauth:grant-revoked:" + id }
func sidGrants(sid string) string  { return "oauth:sid:" + sid }

// userClientGrants indexes the grants a user made to one client, so that
// removing the client's access (the account page) revokes them. The user
// ID's length is in the key, so no user/client pair spells another's.
func userClientGrants(userID, clientID string) string {
	return fmt.Sprintf("oauth:user-client:%d:%s:%s", len(userID), userID, clientID)
}
func jtiKey(jti string) string { return "oauth:jti:" + hash(jti) }

// hash names a token by the SHA-256 of its signature (or of the code).
// A JWT access token's signature is the whole token, over a kilobyte, and
// a refresh hashes it twice (its record's name, and the refresh record's
// "at"): the digest reads the string's bytes where they are, not a heap
// copy ([]byte(s) makes one for anything over 32 bytes), which is safe
// because Sum256 only reads them; and the name is encoded on the stack. A
// name costs one allocation, its string.
func hash(s string) string {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
	var name [hashLen]byte
	base64.RawURLEncoding.Encode(name[:], sum[:])
	return string(name[:])
}

// hashLen is the length of a name from hash:
// base64.RawURLEncoding.EncodedLen(sha256.Size).
const hashLen = 43

// entry is a stored fosite request. The client is stored by ID and looked
// up on read, so a client removed from the configuration makes its tokens
// worthless at once.
type entry struct {
	ID          string    `json:"id"`
	RequestedAt time.Time `json:"rat"`
	ClientID    string    `json:"client_id"`
	Scopes      []string  `json:"scopes,omitempty"`
	Granted     []string  `json:"granted,omitempty"`
	// AsRequested: the granted scopes are the requested ones (Granted
	// is not written twice).
	AsRequested     bool       `json:"as_req,omitempty"`
	Audience        []string   `json:"aud,omitempty"`
	GrantedAudience []string   `json:"granted_aud,omitempty"`
	Form            url.Values `json:"form,omitempty"`
	// Session is the session; Stored, what is written and read of it.
	Session *Session      `json:"-"`
	Stored  storedSession `json:"session"`
	// AccessHash is the access token issued with a refresh token.
	AccessHash string `json:"at,omitempty"`
}

func encode(req fosite.Requester, accessHash string) ([]byte, error) {
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return nil, fmt.Errorf("oauthstore: session is %T, want *oauthstore.Session", req.GetSession())
	}
	return encodeWith(req, sess, accessHash)
}

func encodeWith(req fosite.Requester, sess *Session, accessHash string) ([]byte, error) {
	e := entry{
		ID: req.GetID(), RequestedAt: req.GetRequestedAt(), ClientID: req.GetClient().GetID(),
		Scopes: req.GetRequestedScopes(), Granted: req.GetGrantedScopes(),
		Audience: req.GetRequestedAudience(), GrantedAudience: req.GetGrantedAudience(),
		Form: req.GetRequestForm(), Session: sess, Stored: sess.stored(), AccessHash: accessHash,
	}
	if len(e.Granted) > 0 && slices.Equal(e.Scopes, e.Granted) {
		e.Granted, e.AsRequested = nil, true
	}
	return json.Marshal(e)
}

// tokenSession is sess as a token's record keeps it: the expiry times of
// the kinds listed, not those of the code it came from or of the other
// token.
func tokenSession(sess *Session, keep ...fosite.TokenType) *Session {
	c := *sess
	c.ExpiresAt = map[fosite.TokenType]time.Time{}
	for _, k := range keep {
		if t, ok := sess.ExpiresAt[k]; ok {
			c.ExpiresAt[k] = t
		}
	}
	return &c
}

// decode rebuilds a stored request. fosite's contract is that the session
// passed in is hydrated: it checks a code's expiry on the request whose
// session it passed (flow_authorize_code_token.go). The stored fields are
// laid over the session, not in place of it, because fosite also passes a
// session that already carries the new tokens' expiry times.
func (s *Store) decode(ctx context.Context, data []byte, into fosite.Session) (*fosite.Request, *entry, error) {
	sess, ok := into.(*Session)
	if !ok || sess == nil {
		sess = NewSession()
	}
	e, err := decodeEntry(data, sess)
	if err != nil {
		return nil, nil, err
	}
	client, err := s.opts.Clients.GetClient(ctx, e.ClientID)
	if err != nil {
		return nil, nil, fosite.ErrNotFound
	}
	if e.Form == nil {
		e.Form = url.Values{}
	}
	if e.AsRequested {
		e.Granted = slices.Clone(e.Scopes)
	}
	return &fosite.Request{
		ID: e.ID, RequestedAt: e.RequestedAt, Client: client,
		RequestedScope: e.Scopes, GrantedScope: e.Granted,
		RequestedAudience: e.Audience, GrantedAudience: e.GrantedAudience,
		Form: e.Form, Session: e.Session,
	}, e, nil
}

// decodeEntry reads a record, its session laid over sess.
func decodeEntry(data []byte, sess *Session) (*entry, error) {
	e := &entry{Session: sess, Stored: sess.over()}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("oauthstore: corrupt record: %w", err)
	}
	sess.take(e.Stored)
	return e, nil
}

// notFound turns the store's ErrNotFound into fosite's.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}

// ttl is how long a record for a token expiring at exp is kept.
func (s *Store) ttl(exp time.Time, fallback time.Duration) time.Duration {
	if exp.IsZero() {
		return fallback
	}
	if d := exp.Sub(s.opts.Now()) + expirySlack; d > expirySlack/2 {
		return d
	}
	return expirySlack / 2
}

func (s *Store) get(ctx context.Context, key string, into fosite.Session) (*fosite.Request, *entry, error) {
	data, err := s.opts.Backend.Get(ctx, key)
	if err != nil {
		return nil, nil, notFound(err)
	}
	return s.decode(ctx, data, into)
}

// getMarked reads a record and its "used" marker in one round trip.
func (s *Store) getMarked(ctx context.Context, key, marker string, into fosite.Session) (*fosite.Request, *entry, bool, error) {
	vals, err := s.getMany(ctx, key, marker)
	if err != nil {
		return nil, nil, false, err
	}
	if vals[0] == nil {
		return nil, nil, false, fosite.ErrNotFound
	}
	req, e, err := s.decode(ctx, vals[0], into)
	if err != nil {
		return nil, nil, false, err
	}
	requestFrom(ctx).remember(key, e)
	return req, e, vals[1] != nil, nil
}

// getNamed is getMarked for a record of user's grant, read together
// with the user: a record of another user's grant is not found.
func (s *Store) getNamed(ctx context.Context, key, marker, user string, into fosite.Session) (*fosite.Request, bool, error) {
	vals, err := s.getManyAndUser(ctx, user, key, marker)
	if err != nil {
		return nil, false, err
	}
	if vals[0] == nil {
		return nil, false, fosite.ErrNotFound
	}
	req, e, err := s.decode(ctx, vals[0], into)
	if err != nil {
		return nil, false, err
	}
	if e.Session.User() != user {
		return nil, false, fosite.ErrNotFound
	}
	requestFrom(ctx).remember(key, e)
	return req, vals[1] != nil, nil
}

// exists reports whether a marker record is present.
func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.opts.Backend.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetClient finds a client of the application.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	return s.opts.Clients.GetClient(ctx, id)
}

// ClientAssertionJWTValid reports fosite.ErrJTIKnown for a JTI seen before.
// (Aero2's clients do not use private_key_jwt; fosite's interface needs it.)
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	ok, err := s.exists(ctx, jtiKey(jti))
	if err != nil {
		return err
	}
	if ok {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT remembers a JTI until exp.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.opts.Backend.Create(ctx, jtiKey(jti), []byte("1"), s.ttl(exp, time.Hour))
	if errors.Is(err, store.ErrExists) {
		return fosite.ErrJTIKnown
	}
	return err
}

// Authorization codes.

//
// Codes of this release name their grant and expiry (authz's token
// strategy seals them into the code), and their signature as fosite
// passes it carries both: CodeSignature. Redeeming takes the code's
// record, in the commit's batch, and writes nothing else for it: a code
// shown again finds no record, and its name, which only the strategy can
// have opened, says which grant to revoke, until the code would have
// expired (plus expirySlack); after that it is simply not found, so a
// code leaked in an old log cannot revoke anybody's grant. A signature
// without a name is a code of an earlier release, redeemed as that
// release did, with a "used" marker (codeUsedKey) that is read only for
// such codes: replicas of both releases guard it alike during a rolling
// upgrade, and it is gone once the last such code has expired.

// MaxCodeGrant bounds the grant ID a code may name (fosite's UUIDs are
// 36 characters).
const MaxCodeGrant = 128

// CodeSignature is the signature of a code that names its grant and
// expiry.
func CodeSignature(signature, grantID string, exp time.Time) string {
	return signature + nameSep + strconv.FormatInt(exp.Unix(), 10) + nameSep + grantID
}

// codeName returns, for the signature of a named code (named), the grant
// and expiry it names. ok is false for a signature no code of ours has.
func codeName(signature string) (grant string, exp time.Time, named, ok bool) {
	sig, name, named := strings.Cut(signature, nameSep)
	if !named {
		return "", time.Time{}, false, sig != ""
	}
	secs, grant, ok := strings.Cut(name, nameSep)
	n, err := strconv.ParseInt(secs, 10, 64)
	if !ok || err != nil || n <= 0 || strconv.FormatInt(n, 10) != secs || sig == "" || grant == "" || len(grant) > MaxCodeGrant || strings.Contains(grant, nameSep) {
		return "", time.Time{}, true, false
	}
	return grant, time.Unix(n, 0), true, true
}

func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	grant, _, named, ok := codeName(signature)
	if !ok || named && grant != req.GetID() {
		return errors.New("oauthstore: the code's signature does not name its grant")
	}
	data, err := encode(req, "")
	if err != nil {
		return err
	}
	exp := req.GetSession().GetExpiresAt(fosite.AuthorizeCode)
	h := hash(signature)
	// A code is created once: not over a live one (a collision must not
	// take someone's grant), nor, for an unnamed one, over the marker a
	// used one left.
	ops := []store.Op{{Kind: store.OpCreate, Key: codeKey(h), Value: data, TTL: s.ttl(exp, s.opts.CodeTTL)}}
	if !named {
		ops = append(ops, store.Op{Kind: store.OpAbsent, Key: codeUsedKey(h)})
	}
	// Index the grant under the browser session, for logout, and under
	// its user and client, for removing the client's access: in the same
	// step.
	sess := req.GetSession().(*Session)
	if sid := sess.SID; sid != "" {
		ops = append(ops, store.Op{Kind: store.OpSetAdd, Key: sidGrants(sid), TTL: s.opts.GrantTTL, Members: []string{sidGrantMember + req.GetID()}})
	}
	if user := sess.User(); user != "" && consentCanReach(req.GetClient()) {
		ops = append(ops, store.Op{Kind: store.OpSetAdd, Key: userClientGrants(user, req.GetClient().GetID()), TTL: s.opts.GrantTTL, Members: []string{req.GetID()}})
	}
	return s.opts.Backend.Apply(ctx, ops...)
}

// ConsentFree is a client that may never ask the user for consent (authz's
// first-party clients, which skip the consent page).
type ConsentFree interface {
	SkipsConsent() bool
}

// consentCanReach reports whether removing the user's consent to c (the
// account page: RevokeUserClient) may need to find a grant made now, which
// the user-client index is for. Not when c asks for no consent (a) and
// the grant gets no refresh token (b): there is no consent to remove, and
// the grant dies with its short-lived access token. (a) alone is not
// enough: a reload can make the client ask for consent (first_party
// off); the user then consents and may remove the consent, and a grant
// made before the reload is not in the index. Without a refresh token it
// lives only as long as its access token (minutes); with one it would
// outlive the removal by the refresh token's lifetime (days). A reload
// that gives the client the refresh_token grant between the code's issue
// and its redemption is met at the redemption: a refresh token issued
// for a code indexes its grant itself (CreateRefreshTokenSession).
func consentCanReach(c fosite.Client) bool {
	f, ok := c.(ConsentFree)
	return !ok || !f.SkipsConsent() || c.GetGrantTypes().Has("refresh_token")
}

// usedCode is what a used code of an earlier release leaves: its "used"
// marker, which replaces the code's record. fosite needs only the grant's
// ID from a used code, to revoke what the first use issued; the client is
// kept so that the request it rebuilds is a whole one.
type usedCode struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
}

// GetAuthorizeCodeSession returns the code's request; for a used code, the
// request (its grant, from the code's name or an earlier release's
// marker) and fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	grant, exp, named, ok := codeName(signature)
	if !ok {
		return nil, fosite.ErrNotFound
	}
	h := hash(signature)
	if !named {
		return s.getUnnamedCode(ctx, h, sess)
	}
	// The PKCE challenge is read with the code (kept for fosite's PKCE
	// handler, which asks next): read after it, it could be gone with a
	// concurrent winner's commit, and this request would fail on the
	// missing challenge with an error that revokes nothing, its second
	// use of the code unnoticed.
	vals, err := s.getMany(ctx, codeKey(h), pkceKey(h))
	if err != nil {
		return nil, err
	}
	if vals[0] != nil && vals[1] == nil {
		// The code without its challenge. One read is a snapshot on every
		// backend but Redis Cluster, where the two keys are in two slots
		// and each slot's MGET is read apart: there the code may have been
		// read before a concurrent winner took it and the challenge after
		// the winner deleted it (the winner's batch takes the code, a
		// guard, before it deletes the challenge: store.Batches). Then the
		// code is used, and read as present it would fail on the missing
		// challenge with an error that revokes nothing (RFC 6749 §4.1.2
		// wants the grant revoked). Asked again, the store says which: the
		// challenge was seen gone, so a winner's take came before, and the
		// code is gone too now. A code that is still there simply has no
		// challenge (fosite's PKCE handler then refuses it).
		switch _, err := s.opts.Backend.Get(ctx, codeKey(h)); {
		case errors.Is(err, store.ErrNotFound):
			vals[0] = nil // taken: below
		case err != nil:
			return nil, err
		}
	}
	if vals[0] != nil {
		req, e, err := s.decode(ctx, vals[0], sess)
		if err != nil {
			return nil, err
		}
		requestFrom(ctx).remember(codeKey(h), e)
		return req, nil
	}
	if s.opts.Now().After(exp.Add(expirySlack)) {
		// Expired, used or not: nothing to revoke by it any more.
		return nil, fosite.ErrNotFound
	}
	// Taken: used. (fosite reads only the ID, to revoke the grant.)
	return usedRequest(grant, &fosite.DefaultClient{}, sess), fosite.ErrInvalidatedAuthorizeCode
}

// usedRequest is the request fosite is given for a used code: its grant,
// the client, and the session fosite passed in.
func usedRequest(grant string, client fosite.Client, sess fosite.Session) *fosite.Request {
	into, ok := sess.(*Session)
	if !ok || into == nil {
		into = NewSession()
	}
	req := fosite.NewRequest()
	req.ID, req.Client, req.Session = grant, client, into
	return req
}

// getUnnamedCode is GetAuthorizeCodeSession for a code of an earlier
// release: read with its "used" marker.
func (s *Store) getUnnamedCode(ctx context.Context, h string, sess fosite.Session) (fosite.Requester, error) {
	vals, err := s.getMany(ctx, codeKey(h), codeUsedKey(h), pkceKey(h)) // the challenge: as above
	if err != nil {
		return nil, err
	}
	switch {
	case vals[0] != nil:
		// Unused; or used by a request committing right now (its marker
		// and the deletion land together), or marked by an earlier
		// release, whose markers were "1" beside the record.
		req, e, err := s.decode(ctx, vals[0], sess)
		if err != nil {
			return nil, err
		}
		requestFrom(ctx).remember(codeKey(h), e)
		if vals[1] != nil {
			return req, fosite.ErrInvalidatedAuthorizeCode
		}
		return req, nil
	case vals[1] != nil:
		var m usedCode
		if err := json.Unmarshal(vals[1], &m); err != nil || m.ID == "" {
			return nil, fmt.Errorf("oauthstore: corrupt used-code marker: %w", err)
		}
		client, err := s.opts.Clients.GetClient(ctx, m.ClientID)
		if err != nil {
			// The client is gone, and with it every token of the grant.
			client = &fosite.DefaultClient{ID: m.ClientID}
		}
		return usedRequest(m.ID, client, sess), fosite.ErrInvalidatedAuthorizeCode
	}
	return nil, fosite.ErrNotFound
}

// InvalidateAuthorizeCodeSession uses the code up: a named code's record
// is taken (store.OpTake), nothing written in its place; an earlier
// release's code has its record replaced by the small marker (usedCode)
// in the same step, as that release did. Exactly one caller succeeds;
// the others get ErrConcurrentUse (inside a Request, at Commit).
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	_, _, named, ok := codeName(signature)
	if !ok {
		return fosite.ErrNotFound
	}
	h := hash(signature)
	failed := fmt.Errorf("%w: %w", ErrConcurrentUse, fosite.ErrInvalidatedAuthorizeCode)
	if named {
		return s.guardThen(ctx, store.Op{Kind: store.OpTake, Key: codeKey(h)}, failed)
	}
	e := requestFrom(ctx).recall(codeKey(h)) // fosite read it moments ago
	if e == nil {
		data, err := s.opts.Backend.Get(ctx, codeKey(h))
		if errors.Is(err, store.ErrNotFound) {
			// Used already (its marker replaced it), or never issued.
			if used, err := s.exists(ctx, codeUsedKey(h)); err != nil || used {
				return cmp.Or(err, fmt.Errorf("%w: %w", ErrConcurrentUse, fosite.ErrInvalidatedAuthorizeCode))
			}
		}
		if err != nil {
			return notFound(err)
		}
		if e, err = decodeEntry(data, NewSession()); err != nil {
			return err
		}
	}
	marker, err := json.Marshal(usedCode{ID: e.ID, ClientID: e.ClientID})
	if err != nil {
		return err
	}
	return s.guardThen(ctx, store.Op{Kind: store.OpCreate, Key: codeUsedKey(h), Value: marker, TTL: s.opts.CodeTTL + expirySlack},
		failed, store.Op{Kind: store.OpDelete, Key: codeKey(h)})
}

// PKCE.

func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	data, err := encode(req, "")
	if err != nil {
		return err
	}
	exp := req.GetSession().GetExpiresAt(fosite.AuthorizeCode)
	return s.opts.Backend.Put(ctx, pkceKey(hash(signature)), data, s.ttl(exp, s.opts.CodeTTL))
}

func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	if _, _, _, ok := codeName(signature); !ok {
		return nil, fosite.ErrNotFound
	}
	// Inside a Request, as read with the code.
	vals, err := s.getMany(ctx, pkceKey(hash(signature)))
	if err != nil {
		return nil, err
	}
	if vals[0] == nil {
		return nil, fosite.ErrNotFound
	}
	req, _, err := s.decode(ctx, vals[0], sess)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession deletes the challenge; inside a Request, at its
// end. fosite deletes it before it checks the verifier, long before the
// code's single-use guard decides the winner: deleted at once, a second
// redemption of the code in that window failed on the missing challenge,
// with an error that revokes nothing, and the first redemption's tokens
// survived the code being shown twice.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.consume(ctx, pkceKey(hash(signature)))
}

// OpenID Connect sessions, keyed by the code itself (fosite passes the
// code, not its signature): hashed like everything else.

func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	data, err := encode(req, "")
	if err != nil {
		return err
	}
	exp := req.GetSession().GetExpiresAt(fosite.AuthorizeCode)
	return s.opts.Backend.Put(ctx, oidcKey(hash(code)), data, s.ttl(exp, s.opts.CodeTTL))
}

func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	var into fosite.Session
	if req != nil {
		into = req.GetSession()
	}
	r, _, err := s.get(ctx, oidcKey(hash(code)), into)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteOpenIDConnectSession deletes the code's OpenID Connect session;
// inside a Request, at its end, for the reason DeletePKCERequestSession
// gives. (A second redemption that found it deleted got tokens without an
// ID token: fosite takes a missing session for a non-OpenID request.)
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.consume(ctx, oidcKey(hash(code)))
}

// Access tokens.
//
// Aero2's access tokens are JWTs that carry their request (RFC 9068
// §2.2: sub, aud, client_id, scope, iat, exp, auth_time, cnf), and a
// token is named by the SHA-256 of the whole JWT. A record found under
// that name proves this exact token was issued here and is not revoked,
// so its payload is as trustworthy as the record: the record keeps only
// what the token does not say (atRecord), and the request is rebuilt
// from both. Revoking or expiring the token deletes the record, so the
// token is inactive at once, on every backend, as before. A token whose
// payload does not say what its request holds (not one of Aero2's JWTs)
// is stored whole, the way every access token was by earlier releases,
// and records of both kinds are read.

// atRecord is an access token's record beside its JWT.
type atRecord struct {
	// Grant is the request (grant) ID: revocation revokes by it.
	Grant string `json:"g"`
	// UserID, when the token's sub is not the user's ID (pairwise).
	UserID   string `json:"u,omitempty"`
	Username string `json:"n,omitempty"`
	SID      string `json:"s,omitempty"`
	// IssuerAud: no audience was granted, and the token's aud is the
	// issuer (authz's strategy), which is not a granted audience.
	IssuerAud bool `json:"ia,omitempty"`
}

// atClaims are the claims of an access token the store reads.
type atClaims struct {
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	AuthTime int64    `json:"auth_time"`
	Cnf      struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// AccessClaims are the claims of Aero2's access tokens (RFC 9068 §2.2,
// §2.2.3.1), as authz's token strategy writes them: fields in the order
// of their names, so that their JSON is what a map of them would give.
// The identity claims are the ID token's values, whatever their types; a
// claim the ID token does not hold (nil) is left out.
type AccessClaims struct {
	Audience          []string      `json:"aud"`
	AuthTime          int64         `json:"auth_time,omitempty"`
	ClientID          string        `json:"client_id"`
	Cnf               *Confirmation `json:"cnf,omitempty"`
	Email             any           `json:"email,omitempty"`
	EmailVerified     any           `json:"email_verified,omitempty"`
	Expiry            int64         `json:"exp"`
	Groups            any           `json:"groups,omitempty"`
	IssuedAt          int64         `json:"iat"`
	Issuer            string        `json:"iss"`
	JTI               string        `json:"jti"`
	PreferredUsername any           `json:"preferred_username,omitempty"`
	Scope             string        `json:"scope,omitempty"`
	Subject           string        `json:"sub"`
}

// Confirmation is an access token's cnf claim: the DPoP key's thumbprint
// (RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt"`
}

// Issued records, in the session, the claims of the access token just
// signed for it, so that CreateAccessTokenSession reads them from here
// instead of decoding the token again. Only for token itself: the store
// decodes any other token it is handed.
func (s *Session) Issued(token string, c *AccessClaims) {
	s.issued = &issuedToken{token, c}
}

// issuedToken is an access token and the claims it was signed with.
type issuedToken struct {
	token  string
	claims *AccessClaims
}

// claimsOf are the claims of token the store reads: those the strategy
// recorded for it in the session, or else decoded from its payload.
func claimsOf(token string, sess *Session) (*atClaims, bool) {
	if it := sess.issued; it != nil && it.token == token {
		c := it.claims
		a := &atClaims{Subject: c.Subject, Audience: c.Audience, ClientID: c.ClientID, Scope: c.Scope,
			IssuedAt: c.IssuedAt, Expiry: c.Expiry, AuthTime: c.AuthTime}
		if c.Cnf != nil {
			a.Cnf.JKT = c.Cnf.JKT
		}
		return a, len(token) <= maxAccessToken
	}
	return parseAccessClaims(token)
}

// maxAccessToken bounds the JWT whose payload is decoded.
const maxAccessToken = 16 << 10

// parseAccessClaims decodes the payload of a JWT, without checking its
// signature: only ever for a token the caller holds a record of.
func parseAccessClaims(token string) (*atClaims, bool) {
	if len(token) > maxAccessToken || strings.Count(token, ".") != 2 {
		return nil, false
	}
	_, rest, ok := strings.Cut(token, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	var c atClaims
	if json.Unmarshal(raw, &c) != nil {
		return nil, false
	}
	return &c, true
}

// splitScope reads a scope claim (RFC 9068 §2.2.3: space-separated).
func splitScope(scope string) []string {
	if scope == "" {
		return nil
	}
	return strings.Split(scope, " ")
}

// accessRecord is the small record for the token issued for req, or
// false when its JWT does not carry everything the rebuilt request
// would read from it.
func accessRecord(token string, req fosite.Requester, sess *Session) ([]byte, bool) {
	c, ok := claimsOf(token, sess)
	if !ok {
		return nil, false
	}
	granted := req.GetGrantedScopes()
	if c.Scope != strings.Join(granted, " ") || !slices.Equal(splitScope(c.Scope), []string(granted)) {
		return nil, false // a scope the rebuilt request would spell otherwise
	}
	aud := []string(req.GetGrantedAudience())
	issuerAud := len(aud) == 0 && len(c.Audience) == 1
	authTime := int64(0)
	if !sess.AuthTime.IsZero() {
		authTime = sess.AuthTime.Unix()
	}
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if c.Subject != sess.Subject || c.ClientID != req.GetClient().GetID() ||
		exp.IsZero() || c.Expiry != exp.Unix() || c.AuthTime != authTime || c.Cnf.JKT != sess.JKT || c.IssuedAt == 0 ||
		(!issuerAud && !slices.Equal(c.Audience, aud)) {
		return nil, false
	}
	r := atRecord{Grant: req.GetID(), Username: sess.Username, SID: sess.SID, IssuerAud: issuerAud}
	if sess.UserID != sess.Subject {
		r.UserID = sess.UserID
	}
	if r.Grant == "" {
		return nil, false
	}
	data, err := json.Marshal(r)
	return data, err == nil
}

// CreateAccessTokenSession stores an access token: for one of Aero2's
// JWTs the small record (atRecord), for any other token the request
// without the ID token claims (nothing read through an access token needs
// them).
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauthstore: session is %T, want *oauthstore.Session", req.GetSession())
	}
	data, small := accessRecord(signature, req, sess)
	if !small {
		lite := tokenSession(sess, fosite.AccessToken)
		lite.Claims, lite.Headers = nil, nil
		var err error
		if data, err = encodeWith(req, lite, ""); err != nil {
			return err
		}
	}
	h := hash(signature)
	ttl := s.ttl(sess.GetExpiresAt(fosite.AccessToken), s.opts.GrantTTL)
	put := store.Op{Kind: store.OpPut, Key: accessKey(h), Value: data, TTL: ttl}
	if req.GetRequestForm().Get("grant_type") == "client_credentials" {
		// A client-credentials grant is this one token: nothing revokes it
		// by grant (no code, no refresh token, no browser session), so it
		// needs no index. Revocation deletes it by itself.
		return s.apply(ctx, put)
	}
	// The token and its index entry in one step: a token revocation by
	// grant could not find is never stored; nor one of a revoked grant.
	return s.applyGrant(ctx, req.GetID(), put,
		store.Op{Kind: store.OpSetAdd, Key: grantIndex(req.GetID()), TTL: ttl, Members: []string{accessMember + h}})
}

func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, into fosite.Session) (fosite.Requester, error) {
	data, err := s.opts.Backend.Get(ctx, accessKey(hash(signature)))
	if err != nil {
		return nil, notFound(err)
	}
	var r atRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("oauthstore: corrupt record: %w", err)
	}
	if r.Grant == "" {
		// A whole request: an earlier release's, or not one of our JWTs.
		req, _, err := s.decode(ctx, data, into)
		if err != nil {
			return nil, err
		}
		return req, nil
	}
	c, ok := parseAccessClaims(signature)
	if !ok {
		return nil, errors.New("oauthstore: the access token of a small record carries no claims")
	}
	client, err := s.opts.Clients.GetClient(ctx, c.ClientID)
	if err != nil {
		return nil, fosite.ErrNotFound
	}
	sess, ok := into.(*Session)
	if !ok || sess == nil {
		sess = NewSession()
	}
	sess.Subject, sess.UserID, sess.Username, sess.SID, sess.JKT = c.Subject, r.UserID, r.Username, r.SID, c.Cnf.JKT
	sess.AuthTime = time.Time{}
	if c.AuthTime != 0 {
		sess.AuthTime = time.Unix(c.AuthTime, 0).UTC()
	}
	sess.SetExpiresAt(fosite.AccessToken, time.Unix(c.Expiry, 0))
	scopes := fosite.Arguments(splitScope(c.Scope))
	var aud fosite.Arguments
	if !r.IssuerAud {
		aud = c.Audience
	}
	return &fosite.Request{
		ID: r.Grant, RequestedAt: time.Unix(c.IssuedAt, 0).UTC(), Client: client,
		RequestedScope: slices.Clone(scopes), GrantedScope: scopes,
		RequestedAudience: slices.Clone(aud), GrantedAudience: aud,
		Form: url.Values{}, Session: sess,
	}, nil
}

func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.opts.Backend.Delete(ctx, accessKey(hash(signature)))
}

// Refresh tokens.
//
// A refresh token of a user's grant names its user (authz's token
// strategy seals the name into the token), and its signature as fosite
// passes it carries the name: NamedSignature. The token, its "used"
// marker and the user (whose grant dies once they are disabled) are then
// read in one round trip, and the record is only the token's if it is
// that user's grant. A signature without a name (a token of an earlier
// release, or of a grant without a user) is read without the user.

// maxUserName bounds the user ID a signature may name: longer is no
// token of ours.
const maxUserName = 256

// nameSep joins a signature and the user it names; fosite's HMAC
// signatures are base64url, which has no '~'.
const nameSep = "~"

// NamedSignature is the signature of a refresh token that names userID.
func NamedSignature(signature, userID string) string {
	return signature + nameSep + userID
}

// splitSignature returns the signature proper and the user it names ("":
// none). ok is false for a name no token of ours carries.
func splitSignature(signature string) (sig, user string, ok bool) {
	sig, user, named := strings.Cut(signature, nameSep)
	if !named {
		return sig, "", true
	}
	return sig, user, sig != "" && user != "" && len(user) <= maxUserName
}

// refreshHash is the name of the refresh token's record.
func refreshHash(signature string) string {
	sig, _, _ := splitSignature(signature)
	return hash(sig)
}

func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	accessHash := ""
	if accessSignature != "" {
		accessHash = hash(accessSignature)
	}
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauthstore: session is %T, want *oauthstore.Session", req.GetSession())
	}
	// The access token's expiry stays: introspecting the refresh token
	// shows nothing of it, but a grant's latest expiry times are its
	// session's.
	data, err := encodeWith(req, tokenSession(sess, fosite.RefreshToken, fosite.AccessToken), accessHash)
	if err != nil {
		return err
	}
	h := refreshHash(signature)
	ttl := s.ttl(req.GetSession().GetExpiresAt(fosite.RefreshToken), s.opts.GrantTTL)
	ops := []store.Op{
		{Kind: store.OpPut, Key: refreshKey(h), Value: data, TTL: ttl},
		{Kind: store.OpSetAdd, Key: grantIndex(req.GetID()), TTL: ttl, Members: []string{refreshMember + h}},
	}
	if user := sess.User(); user != "" && req.GetRequestForm().Get("grant_type") == "authorization_code" {
		// The grant's first refresh token: the grant is in its user and
		// client's index, whatever the code foresaw (consentCanReach). In
		// the same batch, so it costs no round trip, and a set addition
		// of a member it has already changes nothing.
		ops = append(ops, store.Op{Kind: store.OpSetAdd, Key: userClientGrants(user, req.GetClient().GetID()), TTL: s.opts.GrantTTL, Members: []string{req.GetID()}})
	}
	return s.applyGrant(ctx, req.GetID(), ops...)
}

// GetRefreshTokenSession returns the token's request; for a rotated token,
// the request and fosite.ErrInactiveToken.
//
// A signature that names a user is read with that user, and is not found
// unless the record is that user's grant.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	sig, user, ok := splitSignature(signature)
	if !ok || sig == "" {
		return nil, fosite.ErrNotFound
	}
	h := hash(sig)
	var req *fosite.Request
	var used bool
	var err error
	if user == "" {
		req, _, used, err = s.getMarked(ctx, refreshKey(h), refreshUsed(h), sess)
	} else {
		req, used, err = s.getNamed(ctx, refreshKey(h), refreshUsed(h), user, sess)
	}
	if err != nil {
		return nil, err
	}
	if used {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession deletes the token's record but keeps its "used"
// marker. fosite calls it on reuse, just before it revokes the family:
// without the marker, a request that read the token unused before the
// first rotation could commit in between, before the grant's tombstone is
// written, and be a second winner (its tokens then die with the family,
// but they were issued).
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.opts.Backend.Delete(ctx, refreshKey(refreshHash(signature)))
}

// errRefreshRace is a rotation's error when another took the guard
// first: made once, not for every rotation that might lose.
var errRefreshRace = fmt.Errorf("%w: %w", ErrConcurrentUse, fosite.ErrInactiveToken)

// RotateRefreshToken marks the presented refresh token used (kept, so a
// later reuse is recognised) and revokes the access token issued with it.
// Exactly one of concurrent rotations succeeds (inside a Request, at
// Commit).
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	h := refreshHash(signature)
	e := requestFrom(ctx).recall(refreshKey(h)) // fosite read it moments ago
	if e == nil {
		var err error
		if _, e, _, err = s.getMarked(ctx, refreshKey(h), refreshUsed(h), nil); err != nil {
			return err
		}
	}
	ttl := s.ttl(e.Session.GetExpiresAt(fosite.RefreshToken), s.opts.GrantTTL)
	if err := s.guard(ctx, refreshUsed(h), ttl, errRefreshRace); err != nil {
		return err
	}
	if e.AccessHash != "" {
		return s.apply(ctx,
			store.Op{Kind: store.OpDelete, Key: accessKey(e.AccessHash)},
			store.Op{Kind: store.OpSetRemove, Key: grantIndex(requestID), Members: []string{accessMember + e.AccessHash}})
	}
	return nil
}

// RevokeRefreshToken revokes the grant and deletes every refresh token of
// it (the family), used ones included.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if err := s.tombstone(ctx, requestID); err != nil {
		return err
	}
	return s.deleteGrantTokens(ctx, requestID, false, true)
}

// RevokeAccessToken revokes the grant and deletes every access token of it.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	if err := s.tombstone(ctx, requestID); err != nil {
		return err
	}
	return s.deleteGrantTokens(ctx, requestID, true, false)
}

// RevokeGrant revokes every token of a grant.
func (s *Store) RevokeGrant(ctx context.Context, requestID string) error {
	if err := s.tombstone(ctx, requestID); err != nil {
		return err
	}
	return s.deleteGrantTokens(ctx, requestID, true, true)
}

// A grant's index holds its tokens' hashes, each prefixed by its kind:
// one set per grant for both kinds.
const (
	accessMember  = "a:"
	refreshMember = "r:"
)

// deleteGrantTokens deletes the grant's access tokens, refresh tokens or
// both (each refresh token with its "used" marker), and their index
// entries. Grants indexed by an earlier release, in one set per kind, are
// found as well.
func (s *Store) deleteGrantTokens(ctx context.Context, requestID string, access, refresh bool) error {
	members, err := s.opts.Backend.SetMembers(ctx, grantIndex(requestID))
	if err != nil {
		return err
	}
	var keys, gone []string
	for _, m := range members {
		switch {
		case access && strings.HasPrefix(m, accessMember):
			keys = append(keys, accessKey(m[len(accessMember):]))
		case refresh && strings.HasPrefix(m, refreshMember):
			h := m[len(refreshMember):]
			keys = append(keys, refreshKey(h), refreshUsed(h))
		default:
			continue
		}
		gone = append(gone, m)
	}
	if len(keys) > 0 {
		if err := s.opts.Backend.Delete(ctx, keys...); err != nil {
			return err
		}
		if err := s.opts.Backend.SetRemove(ctx, grantIndex(requestID), gone...); err != nil {
			return err
		}
	}
	var errs []error
	if refresh {
		errs = append(errs, s.deleteIndexed(ctx, grantRefr(requestID), refreshKey, refreshUsed))
	}
	if access {
		errs = append(errs, s.deleteIndexed(ctx, grantAccess(requestID), accessKey))
	}
	return errors.Join(errs...)
}

// tombstone marks the grant revoked, before its tokens are looked up:
// a commit of the grant's tokens either ran before it, and its tokens are
// in the indexes read next, or runs after it and fails. It lives as long
// as any code or token of the grant could still be redeemed.
func (s *Store) tombstone(ctx context.Context, requestID string) error {
	ttl := max(s.opts.GrantTTL, s.opts.CodeTTL) + expirySlack
	return s.opts.Backend.Put(ctx, revokedKey(requestID), []byte("1"), ttl)
}

// deleteIndexed deletes the records an index names (each under every key
// the functions give) and then the index entries.
func (s *Store) deleteIndexed(ctx context.Context, index string, keyFns ...func(string) string) error {
	members, err := s.opts.Backend.SetMembers(ctx, index)
	if err != nil || len(members) == 0 {
		return err
	}
	keys := make([]string, 0, len(keyFns)*len(members))
	for _, h := range members {
		for _, key := range keyFns {
			keys = append(keys, key(h))
		}
	}
	if err := s.opts.Backend.Delete(ctx, keys...); err != nil {
		return err
	}
	return s.opts.Backend.SetRemove(ctx, index, members...)
}

// A browser session's index (sidGrants) holds two kinds of member, each
// with its prefix: the grants made in the session, and the clients to
// tell by back-channel logout when it ends (one key per browser session,
// not one per kind). An earlier release kept bare grant IDs there; grant
// IDs (fosite's UUIDs, device grants' base64url handles) never contain a
// ':', and every typed member does, so each member reads one way only: a
// registration can never be taken for a grant, nor a grant for a
// registration, whatever a client ID or subject spells.
const (
	sidGrantMember  = "g:"
	sidLogoutMember = "l:"
)

// sidGrantID returns the grant a member of a session's index names.
func sidGrantID(m string) (string, bool) {
	if id, ok := strings.CutPrefix(m, sidGrantMember); ok {
		return id, id != ""
	}
	return m, m != "" && !strings.Contains(m, ":") // an earlier release's
}

// LogoutTarget is a client to send a back-channel logout token when a
// browser session ends, and the subject the client knows the user by.
type LogoutTarget struct {
	Client, Subject string
	member          string
}

// logoutMember spells a registration: the client ID's length first, so
// that no client/subject pair spells another's (a client ID may hold
// spaces, colons or braces).
func logoutMember(client, subject string) string {
	return sidLogoutMember + strconv.Itoa(len(client)) + ":" + client + subject
}

// parseLogoutMember reads a registration; ok is false for any other member.
func parseLogoutMember(m string) (t LogoutTarget, ok bool) {
	rest, ok := strings.CutPrefix(m, sidLogoutMember)
	if !ok {
		return t, false
	}
	n, rest, ok := strings.Cut(rest, ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l <= 0 || l > len(rest) || strconv.Itoa(l) != n {
		return t, false
	}
	return LogoutTarget{Client: rest[:l], Subject: rest[l:], member: m}, true
}

// AddLogoutTarget records that client, which knows the user as subject,
// got tokens in browser session sid and is to be told when it ends. The
// session's index then lives at least ttl. Inside a Request, with the
// commit: tokens are issued with their registration or not at all.
func (s *Store) AddLogoutTarget(ctx context.Context, sid, client, subject string, ttl time.Duration) error {
	if sid == "" || client == "" {
		return errors.New("oauthstore: a logout target needs a session and a client")
	}
	return s.apply(ctx, store.Op{Kind: store.OpSetAdd, Key: sidGrants(sid), TTL: ttl, Members: []string{logoutMember(client, subject)}})
}

// LogoutTargets returns the back-channel logout registrations of browser
// session sid. DropLogoutTargets forgets them once their logouts are
// queued.
func (s *Store) LogoutTargets(ctx context.Context, sid string) ([]LogoutTarget, error) {
	members, err := s.opts.Backend.SetMembers(ctx, sidGrants(sid))
	if err != nil {
		return nil, err
	}
	var out []LogoutTarget
	for _, m := range members {
		if t, ok := parseLogoutMember(m); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// DropLogoutTargets removes registrations LogoutTargets returned.
func (s *Store) DropLogoutTargets(ctx context.Context, sid string, targets ...LogoutTarget) error {
	members := make([]string, 0, len(targets))
	for _, t := range targets {
		members = append(members, cmp.Or(t.member, logoutMember(t.Client, t.Subject)))
	}
	if len(members) == 0 {
		return nil
	}
	return s.opts.Backend.SetRemove(ctx, sidGrants(sid), members...)
}

// RevokeSession revokes every grant made in the browser session sid: what
// RP-initiated logout does, so that the session's access tokens turn
// inactive at introspection and userinfo. The session's back-channel
// registrations stay, for BackchannelLogout, which runs after it.
func (s *Store) RevokeSession(ctx context.Context, sid string) error {
	members, err := s.opts.Backend.SetMembers(ctx, sidGrants(sid))
	if err != nil {
		return err
	}
	var done []string
	for _, m := range members {
		id, ok := sidGrantID(m)
		if !ok {
			continue
		}
		if err := s.RevokeGrant(ctx, id); err != nil {
			return err
		}
		done = append(done, m)
	}
	if len(done) > 0 {
		return s.opts.Backend.SetRemove(ctx, sidGrants(sid), done...)
	}
	return nil
}

// RevokeUserClient revokes every grant the user made to the client (its
// codes' and device codes' tokens, in every browser session): what
// removing a client's access from the account page does.
func (s *Store) RevokeUserClient(ctx context.Context, userID, clientID string) error {
	key := userClientGrants(userID, clientID)
	grants, err := s.opts.Backend.SetMembers(ctx, key)
	if err != nil {
		return err
	}
	for _, id := range grants {
		if err := s.RevokeGrant(ctx, id); err != nil {
			return err
		}
	}
	if len(grants) > 0 {
		return s.opts.Backend.SetRemove(ctx, key, grants...)
	}
	return nil
}
