package proxy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

// errNoSession: no live proxy session (no cookie, unknown or ended, or
// its provider session is gone).
var errNoSession = errors.New("proxy: no session")

// record is a proxy session in the store, under "proxy-session:<id>" where
// id is the SHA-256 of the cookie token (session.TokenID). It is sealed
// with a key derived from the cookie token, which the store never sees: a
// dump of the store yields neither cookies nor the users' tokens.
//
// At Aero2's own provider (sessions.alive) the record is a reference to
// the provider session (the claims' sid), which every validation checks,
// and the claims that policies and identity headers read: not the ID
// token, which only an RP-initiated logout at another provider needs (the
// proxy ends its own provider's session itself, signOut). It is stored
// as wireRecord.
type record struct {
	Identity     Identity
	IDToken      string
	AccessToken  string
	RefreshToken string
	AccessExpiry time.Time
	// AccessLifetime is the access token's whole lifetime; 0 if unknown.
	AccessLifetime time.Duration
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// Origin is the origin the session was created for (the route's
	// scheme://host, from the configuration): it admits there only.
	Origin string
}

// wireRecord is a record as sealed: the identity as its claims (the
// Identity is rebuilt from them, identityFromClaims, unless it says
// otherwise), times in Unix seconds, short names. Three quarters of a
// record were copies: the ID token of the claims, the Identity of the
// claims, the claims of one ID token's issuance.
type wireRecord struct {
	Claims map[string]any `json:"c,omitempty"`
	// Identity is set only when the provider's Identity is not what the
	// claims make (a Provider other than OIDCProvider may say more).
	Identity       *Identity `json:"id,omitempty"`
	IDToken        string    `json:"i,omitempty"`
	AccessToken    string    `json:"a,omitempty"`
	RefreshToken   string    `json:"r,omitempty"`
	AccessExpiry   int64     `json:"ax,omitempty"`
	AccessLifetime int64     `json:"al,omitempty"` // seconds
	CreatedAt      int64     `json:"t"`
	ExpiresAt      int64     `json:"x"`
	Origin         string    `json:"o"`
}

// tokenClaims describe one ID token, not the user: unique to it (nonce,
// jti, the hashes) or its own validity. A session keeps none of them;
// allowed_claims on them never matched anything but that one token.
var tokenClaims = []string{"nonce", "jti", "at_hash", "c_hash", "exp", "iat", "nbf"}

// sessionClaims is c without tokenClaims (a copy: c is the provider's).
func sessionClaims(c map[string]any) map[string]any {
	if c == nil {
		return nil
	}
	out := make(map[string]any, len(c))
	for k, v := range c {
		if !slices.Contains(tokenClaims, k) {
			out[k] = v
		}
	}
	return out
}

// unixTime is a record time: whole seconds, as the record keeps them.
func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func sameIdentity(a, b *Identity) bool {
	return a.Subject == b.Subject && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.PreferredUsername == b.PreferredUsername && a.Name == b.Name && a.SessionID == b.SessionID &&
		slices.Equal(a.Groups, b.Groups)
}

func (rec *record) wire() *wireRecord {
	w := &wireRecord{
		Claims: rec.Identity.Claims, IDToken: rec.IDToken, AccessToken: rec.AccessToken, RefreshToken: rec.RefreshToken,
		AccessExpiry: unixSeconds(rec.AccessExpiry), AccessLifetime: int64(rec.AccessLifetime / time.Second),
		CreatedAt: unixSeconds(rec.CreatedAt), ExpiresAt: unixSeconds(rec.ExpiresAt), Origin: rec.Origin,
	}
	if made := identityFromClaims(rec.Identity.Claims); !sameIdentity(&made, &rec.Identity) {
		id := rec.Identity
		id.Claims = nil
		w.Identity = &id
	}
	return w
}

func (w *wireRecord) record() *record {
	rec := &record{
		Identity: identityFromClaims(w.Claims), IDToken: w.IDToken, AccessToken: w.AccessToken, RefreshToken: w.RefreshToken,
		AccessExpiry: unixTime(w.AccessExpiry), AccessLifetime: time.Duration(w.AccessLifetime) * time.Second,
		CreatedAt: unixTime(w.CreatedAt), ExpiresAt: unixTime(w.ExpiresAt), Origin: w.Origin,
	}
	if w.Identity != nil {
		rec.Identity = *w.Identity
		rec.Identity.Claims = w.Claims
		// Made once here, not on every request of the session
		// (groupsValue).
		rec.Identity.groups = groupsHeader(rec.Identity.Groups)
	}
	return rec
}

// newRecord is the record of tokens as the store will give it back (the
// cache holds the same): claims without tokenClaims, whole seconds.
func newRecord(t *Tokens, keepIDToken bool, origin string, now time.Time, lifetime time.Duration) *record {
	id := t.Identity
	id.Claims = sessionClaims(id.Claims)
	// t may have come through a handoff's JSON, which does not carry the
	// groups header's value: made once here, not on every request of the
	// session (groupsValue).
	id.groups = groupsHeader(id.Groups)
	rec := &record{
		Identity: id, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		AccessExpiry: unixTime(unixSeconds(t.AccessExpiry)), AccessLifetime: t.AccessLifetime.Truncate(time.Second),
		CreatedAt: unixTime(now.Unix()), ExpiresAt: unixTime(now.Add(lifetime).Unix()), Origin: origin,
	}
	if keepIDToken {
		rec.IDToken = t.IDToken
	}
	return rec
}

func recordKey(id string) string { return "proxy-session:" + id }

// Records that hold tokens are sealed (AES-GCM) with a key derived from
// the secret that names them (the cookie token, the handoff code), which
// the store never sees: a copy of the store yields no usable token.
func sealKey(purpose, secret string) []byte {
	k := sha256.Sum256([]byte("aero2 proxy " + purpose + "\x00" + secret))
	return k[:]
}

func sealJSON(purpose, secret string, v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(sealKey(purpose, secret))
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plain, nil), nil
}

func unsealJSON(purpose, secret string, sealed []byte, v any) error {
	block, _ := aes.NewCipher(sealKey(purpose, secret))
	gcm, _ := cipher.NewGCM(block)
	if len(sealed) < gcm.NonceSize() {
		return fmt.Errorf("proxy %s: record too short", purpose)
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
	if err != nil {
		return fmt.Errorf("proxy %s: %w", purpose, err)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("proxy %s: %w", purpose, err)
	}
	return nil
}

// recordPurpose names the record format in its key: a record of the
// format before wireRecord does not open (its browser signs in again
// once), and a replica still on that format cannot open these.
const recordPurpose = "session record 2"

func seal(token string, rec *record) ([]byte, error) {
	return sealJSON(recordPurpose, token, rec.wire())
}

func unseal(token string, sealed []byte) (*record, error) {
	w := new(wireRecord)
	if err := unsealJSON(recordPurpose, token, sealed, w); err != nil {
		return nil, err
	}
	return w.record(), nil
}

// ProviderSessions tells whether a provider session (the `sid` of the ID
// token) is still alive, and ends one. It is how a sign-out at the
// provider, or a session ended on the account page, reaches every proxy
// session, and how the proxy's own sign-out ends the provider session
// without depending on the browser to follow a redirect.
type ProviderSessions interface {
	Alive(ctx context.Context, sid string) (bool, error)
	// EndSession ends the provider session sid of user sub (the ID
	// token's claims, which the provider signed), and what the provider
	// issued in it.
	EndSession(ctx context.Context, sub, sid string) error
}

// recordReader is a ProviderSessions that reads a proxy session's record
// in the same store round trip as the provider session it depends on
// (session.Manager). Without it, a session not in the cache costs two
// sequential round trips: the record, then the provider session named
// in it. Both reads report the provider session's deadline as the check
// read it (the zero Deadline: not alive), which bounds how long the
// cache trusts the proxy session (trustUntil); a ProviderSessions that
// is not a recordReader reports none, and its sessions are cached as
// long as session_cache and session_cache_invalidated say.
type recordReader interface {
	AliveWithRecord(ctx context.Context, sid, key string, depends func(record []byte) bool) (session.Deadline, []byte, error)
	AliveUntil(ctx context.Context, sid string) (session.Deadline, error)
}

// trustUntil is how long a session validated with its provider session's
// deadline d may be served from the cache, whatever session_cache and
// session_cache_invalidated allow: the zero time (no bound) without a
// deadline (not Aero2's own provider: the record's ExpiresAt is all the
// proxy knows, and cached enforces it).
//
// Not past d.Ends: the provider session's idle and absolute timeouts are
// not broadcast (nothing happens when one falls), so a cache trusted
// longer would admit a session that has ended, on every replica that
// cached it, for as long as session_cache_invalidated (an hour at most).
// Up to d.Ends is exact: LastSeen only moves forward, and any earlier
// ending is broadcast (or noticed within session_cache without them).
//
// And not past d.Touch (LastSeen plus the touch gap: a tenth of the idle
// timeout, at most 5 minutes). A use served from the cache records
// nothing at the provider; before d.Touch no use would be recorded
// anyway (the manager touches once per gap), so the provider session
// sees the user's activity exactly as it would without the cache, and
// the first request past d.Touch is revalidated, which touches it. Any
// later bound hides activity from the idle timeout: trusted until d.Ends
// minus a margin m, a user whose requests were all served from the cache
// until then, and who then pauses for a little more than m, is signed
// out though never idle for the idle timeout (with m the touch gap,
// requests every fifth of the idle timeout may not be enough). The
// price: an active session is read, and its use written, once per touch
// gap, as the provider's own pages are; its other requests cost no round
// trip, and endings still reach the cache at once by broadcast.
func trustUntil(d session.Deadline) time.Time {
	if !d.Live() {
		return time.Time{}
	}
	if d.Touch.Before(d.Ends) {
		return d.Touch
	}
	return d.Ends
}

// A proxy cookie is its token, and, for a session that depends on a
// provider session Aero2 can read both with (recordReader), "." and that
// session's ID (the ID token's sid; not a secret: ID and logout tokens
// carry it too). The ID is only a hint for reading both at once: the
// provider session checked is always the one the sealed record names,
// and a hint that names another costs the second round trip, nothing
// else (depends refuses it before anything is checked or touched).
func splitCookie(v string) (token, sid string) {
	token, sid, _ = strings.Cut(v, ".")
	if !sidHint(sid) {
		sid = ""
	}
	return token, sid
}

// sidHint reports whether sid can be a provider session ID worth reading
// (they are base64url SHA-256s): client bytes bounded before they reach
// the store.
func sidHint(sid string) bool {
	if sid == "" || len(sid) > 64 {
		return false
	}
	for _, c := range []byte(sid) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// live is a validated session in the in-process cache.
type live struct {
	id      string
	rec     *record
	checked time.Time
	// watched: gen is invalidations.gen from before the validation began,
	// and the session may be trusted for longTTL (see invalidate.go).
	watched bool
	gen     uint64
	// until bounds the trust, whatever the cache's: the provider
	// session's deadline (trustUntil); zero: none.
	until time.Time

	mu         sync.Mutex
	assertions map[string]cachedAssertion
}

// sessions keeps one application's proxy sessions: the store, and a small
// in-process cache of sessions validated in the last cacheTTL, so that a
// request costs no store round trip (docs/proxy.md, "Speed"). Concurrent
// requests of one browser share one validation and one refresh
// (singleflight), so they never race each other into the store.
type sessions struct {
	app      string
	records  store.AppRecords // the application's (store.ForApp)
	sets     store.AppSets    // indexes for back-channel logout; nil: none
	alive    ProviderSessions // nil: no provider-session check
	provider Provider
	ttl      time.Duration // cache
	// keepTokens: a route of the application sends the access token
	// upstream, so sessions keep the access and refresh tokens. Without
	// one they keep neither: two of the three tokens were most of a
	// session record's bytes, kept for nothing.
	keepTokens bool
	// longTTL is the cache while broadcasts of ended sessions are heard
	// (inv); 0: none. broadcasts sends this application's.
	longTTL    time.Duration
	inv        *invalidations
	broadcasts store.Broadcasts
	lifetime   time.Duration // absolute
	now        func() time.Time

	mu    sync.RWMutex
	cache map[string]*live
	// bySID indexes the cache by provider session, for the broadcast of
	// one's ending (forgetProviderSession).
	bySID map[string]map[string]struct{}
	// swept is when remember last dropped the entries past their trust.
	swept time.Time
	// sids are the provider sessions named by bearer tokens found alive
	// (bearersessions.go), swept as the cache is.
	sids      map[string]liveSID
	sidsSwept time.Time
	group     singleflight.Group
}

// maxCachedSessions bounds the cache; expired entries are swept past it.
const maxCachedSessions = 100000

// sweepEvery is how often remember drops the entries no longer trusted:
// every session_cache, so the cache holds the sessions of the last one
// or two; at least a second, so that a sweep (a pass over the cache
// under its lock) is not made at every sign-in when session_cache is
// short or off (only session_cache_invalidated).
func (s *sessions) sweepEvery() time.Duration { return max(s.ttl, time.Second) }

func (s *sessions) cached(id string, now time.Time) *live {
	s.mu.RLock()
	l := s.cache[id]
	s.mu.RUnlock()
	return s.servable(l, now)
}

// cachedKey is cached for the ID in key: the lookup makes no string of it
// (loadAnywhere makes one on a miss only, one allocation fewer for every
// proxied request served from the cache).
func (s *sessions) cachedKey(key *session.Key, now time.Time) *live {
	s.mu.RLock()
	l := s.cache[string(key[:])]
	s.mu.RUnlock()
	return s.servable(l, now)
}

// servable is l, the cache's entry (or nil), when it may still be served
// at now; else nil.
func (s *sessions) servable(l *live, now time.Time) *live {
	if l == nil || !now.Before(l.rec.ExpiresAt) || l.past(now) || !s.trusted(l.checked, l.watched, now) {
		return nil
	}
	return l
}

// trusted reports whether a validation made at checked may still be trusted
// at now: within session_cache, or session_cache_invalidated for one
// watched (made under the subscription, no broadcast during it) while the
// broadcasts are heard.
func (s *sessions) trusted(checked time.Time, watched bool, now time.Time) bool {
	age := now.Sub(checked)
	return age < s.ttl || (watched && age < s.longTTL && s.inv.trusts(checked, now))
}

// past reports whether now is past the provider session's deadline the
// entry is bounded by (trustUntil).
func (l *live) past(now time.Time) bool { return !l.until.IsZero() && !now.Before(l.until) }

func (s *sessions) remember(l *live) {
	if s.ttl <= 0 && s.longTTL <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A broadcast since the validation began may have been about this
	// session, and been handled before it was cached: session_cache only.
	l.watched = l.watched && s.inv != nil && s.inv.gen.Load() == l.gen
	// Entries past their trust are swept once per sweepEvery: each one
	// is a decoded session (2.4 KB, the claims most of it) that no
	// request will read again, and before this they stayed until the
	// cache held maxCachedSessions, so a process kept one per sign-in
	// (TestSignInHeapOnMemoryStore).
	if now := s.now(); now.Sub(s.swept) >= s.sweepEvery() || len(s.cache) >= maxCachedSessions {
		s.swept = now
		for k, v := range s.cache {
			if s.outlived(v.checked, v.watched, v.until, now) {
				s.drop(k)
			}
		}
		if len(s.cache) >= maxCachedSessions {
			clear(s.cache)
			clear(s.bySID)
		}
	}
	s.drop(l.id) // it may have named another provider session
	s.cache[l.id] = l
	if sid := l.rec.Identity.SessionID; sid != "" {
		if s.bySID == nil {
			s.bySID = map[string]map[string]struct{}{}
		}
		if s.bySID[sid] == nil {
			s.bySID[sid] = map[string]struct{}{}
		}
		s.bySID[sid][l.id] = struct{}{}
	}
}

// outlived reports whether an entry validated at checked, bounded by until
// (zero: no bound), can no longer be trusted at now, whatever the
// broadcasts: the sweeps drop it.
func (s *sessions) outlived(checked time.Time, watched bool, until, now time.Time) bool {
	age := now.Sub(checked)
	return !until.IsZero() && !now.Before(until) || age >= s.ttl && !(watched && age < s.longTTL)
}

// drop removes a cached session and its index entry; s.mu is held.
func (s *sessions) drop(id string) {
	l := s.cache[id]
	if l == nil {
		return
	}
	delete(s.cache, id)
	if sid := l.rec.Identity.SessionID; sid != "" {
		delete(s.bySID[sid], id)
		if len(s.bySID[sid]) == 0 {
			delete(s.bySID, sid)
		}
	}
}

func (s *sessions) forget(id string) {
	s.mu.Lock()
	s.drop(id)
	s.mu.Unlock()
}

// load returns the live session for a cookie token presented on origin,
// or errNoSession: also for a session created for another origin (or ""
// for none: a host no route serves).
func (s *sessions) load(ctx context.Context, token, origin string) (*live, error) {
	l, err := s.loadAnywhere(ctx, token)
	if err == nil && (origin == "" || l.rec.Origin != origin) {
		return nil, errNoSession
	}
	return l, err
}

func (s *sessions) loadAnywhere(ctx context.Context, cookie string) (*live, error) {
	token, sid := splitCookie(cookie)
	key, ok := session.TokenKey(token)
	if !ok {
		return nil, errNoSession
	}
	if l := s.cachedKey(&key, s.now()); l != nil {
		return l, nil
	}
	id := string(key[:])
	v, err, _ := s.group.Do(id, func() (any, error) {
		if l := s.cached(id, s.now()); l != nil {
			return l, nil // validated while this call waited
		}
		// One browser's requests share this call: it must not fail
		// because the request that started it went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return s.validate(ctx, id, token, sid)
	})
	if err != nil {
		return nil, err
	}
	return v.(*live), nil
}

// validate reads the session (with the provider session that sid, a hint
// from the cookie, names, in the same round trip where it can) and checks
// it.
func (s *sessions) validate(ctx context.Context, id, token, sid string) (*live, error) {
	watched, gen := s.watch()
	var rec *record
	var until session.Deadline
	checked := false
	rr, own := s.alive.(recordReader)
	if own && sid != "" {
		var err error
		until, _, err = rr.AliveWithRecord(ctx, sid, recordKey(id), func(raw []byte) bool {
			rec = open(token, raw)
			checked = rec != nil && rec.Identity.SessionID == sid
			return checked
		})
		if err != nil {
			return nil, err
		}
	} else {
		var err error
		if rec, err = s.stored(ctx, token); err != nil {
			return nil, err
		}
	}
	if rec == nil {
		s.forget(id)
		return nil, errNoSession
	}
	now := s.now()
	if !now.Before(rec.ExpiresAt) {
		_ = s.records.Delete(ctx, recordKey(id))
		return nil, errNoSession
	}
	if s.alive != nil && rec.Identity.SessionID != "" {
		ok, err := until.Live(), error(nil)
		switch {
		case checked:
		case own: // no hint, or another session's: read it alone
			until, err = rr.AliveUntil(ctx, rec.Identity.SessionID)
			ok = until.Live()
		default:
			ok, err = s.alive.Alive(ctx, rec.Identity.SessionID)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			// The provider session ended: so does this one.
			_ = s.records.Delete(ctx, recordKey(id))
			s.forget(id)
			return nil, errNoSession
		}
	}
	l := &live{id: id, rec: rec, checked: now, watched: watched, gen: gen}
	l.until = trustUntil(until)
	s.remember(l)
	return l, nil
}

// create stores a new session for the tokens, bound to origin, and
// returns its cookie (the token, and a provider session hint: splitCookie).
func (s *sessions) create(ctx context.Context, t *Tokens, origin string) (string, *live, error) {
	watched, gen := s.watch()
	rec := newRecord(t, s.keepIDToken(), origin, s.now(), s.lifetime)
	if !s.keepTokens {
		rec.AccessToken, rec.RefreshToken, rec.AccessExpiry, rec.AccessLifetime = "", "", time.Time{}, 0
	}
	for attempt := 0; ; attempt++ {
		b := make([]byte, 32)
		rand.Read(b)
		token := base64.RawURLEncoding.EncodeToString(b)
		id, _ := session.TokenID(token)
		sealed, err := seal(token, rec)
		if err != nil {
			return "", nil, err
		}
		err = s.records.Create(ctx, recordKey(id), sealed, s.lifetime)
		if errors.Is(err, store.ErrExists) && attempt < 3 {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if err := s.index(ctx, id, &rec.Identity); err != nil {
			_ = s.records.Delete(context.WithoutCancel(ctx), recordKey(id))
			return "", nil, err
		}
		l := &live{id: id, rec: rec, checked: s.now(), watched: watched, gen: gen}
		_, own := s.alive.(recordReader)
		if !own || rec.Identity.SessionID == "" {
			// A session of Aero2's own provider is not cached here:
			// its provider session's deadline is not known (the
			// sign-in may have reused one near its absolute timeout,
			// or one untouched for most of a touch gap), and the
			// cache may not trust it past that (trustUntil). The
			// first request reads it, with the record, in one round
			// trip.
			s.remember(l)
		}
		if own && sidHint(rec.Identity.SessionID) {
			return token + "." + rec.Identity.SessionID, l, nil
		}
		return token, l, nil
	}
}

// stored returns the record of a cookie token without validating it: nil,
// and no error, when there is none or it does not open with the token.
func (s *sessions) stored(ctx context.Context, cookie string) (*record, error) {
	token, _ := splitCookie(cookie)
	id, ok := session.TokenID(token)
	if !ok {
		return nil, nil
	}
	raw, err := s.records.Get(ctx, recordKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return open(token, raw), nil
}

// open unseals a stored record with its cookie token: nil when there is
// none, or it does not open with the token (not ours, or tampered with).
func open(token string, raw []byte) *record {
	if raw == nil {
		return nil
	}
	rec, err := unseal(token, raw)
	if err != nil {
		return nil
	}
	return rec
}

// keepIDToken: the record keeps the ID token, as the hint for the
// provider's RP-initiated logout, only when the provider is not Aero2's
// own. Aero2's provider session is ended by the proxy itself before the
// browser is sent to its logout (signOut), which then has nothing left to
// confirm; there the token was 40% of a record, kept for nothing.
func (s *sessions) keepIDToken() bool { return s.alive == nil }

// endProviderSession ends the provider session that rec depends on, with
// what the provider issued in it, when the provider is Aero2's own
// (s.alive is set).
func (s *sessions) endProviderSession(ctx context.Context, rec *record) error {
	if s.alive == nil || rec == nil || rec.Identity.SessionID == "" {
		return nil
	}
	return s.alive.EndSession(ctx, rec.Identity.Subject, rec.Identity.SessionID)
}

// watch is what a validation starting now records for the longer cache:
// whether there is one, and the broadcasts counted so far.
func (s *sessions) watch() (bool, uint64) {
	if s.inv == nil || s.longTTL <= 0 {
		return false, 0
	}
	return true, s.inv.gen.Load()
}

// end deletes the session of a cookie.
func (s *sessions) end(ctx context.Context, cookie string) error {
	token, _ := splitCookie(cookie)
	id, ok := session.TokenID(token)
	if !ok {
		return nil
	}
	s.forget(id)
	if err := s.records.Delete(ctx, recordKey(id)); err != nil {
		return err
	}
	return s.announce(ctx, id)
}

// refreshMargin renews an access token this long before it expires, so
// that the upstream never receives one about to lapse — or, for a token
// that lives less than twice as long, half-way through its lifetime (see
// fresh).
const refreshMargin = 30 * time.Second

// Refresh tokens rotate, and presenting a rotated one revokes the whole
// family (DESIGN): two refreshes with the same token would sign the user
// out. Within a process, singleflight makes one browser's concurrent
// requests share one refresh; across replicas, a lock record in the store
// (created atomically) elects one refresher, and the others wait for the
// session record it writes.
const (
	refreshLockTTL = 15 * time.Second
	refreshWait    = 10 * time.Second
	refreshPoll    = 25 * time.Millisecond
)

func refreshLockKey(id string) string { return "proxy-refresh-lock:" + id }

// fresh reports whether a record's access token needs no refresh yet.
//
// The margin is refreshMargin, or half the token's lifetime when that is
// shorter. With the fixed margin alone, a token that lives less than
// refreshMargin is due from the moment it is issued: every request
// refreshed it (a provider round trip, a rotation and a turn at the
// cross-replica lock each), and a replica that had waited for another's
// refresh found the new token due as well and redeemed the refresh token
// again (server/replicas_test.go, TestRefreshAcrossReplicasRedeemsOnce).
func (s *sessions) fresh(rec *record) bool {
	if rec.AccessExpiry.IsZero() {
		return true
	}
	margin := refreshMargin
	if rec.AccessLifetime > 0 {
		margin = min(margin, rec.AccessLifetime/2)
	}
	return s.now().Add(margin).Before(rec.AccessExpiry)
}

// accessToken returns a current access token for the session, refreshing
// it (once, for all concurrent requests of every replica) when it is
// about to expire.
func (s *sessions) accessToken(ctx context.Context, cookie string, l *live) (string, error) {
	token, _ := splitCookie(cookie)
	if l.rec.AccessToken == "" && l.rec.RefreshToken == "" {
		// Made while no route sent tokens (keepTokens), before a reload
		// added one: it has none to send, and signs in again.
		return "", errNoSession
	}
	if s.fresh(l.rec) {
		return l.rec.AccessToken, nil
	}
	if l.rec.RefreshToken == "" {
		return "", errNoSession
	}
	v, err, _ := s.group.Do("refresh:"+l.id, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshWait+5*time.Second)
		defer cancel()
		return s.refreshOnce(ctx, token, l.id, l.until)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// refreshOnce refreshes the session's tokens unless another request or
// replica has done so, and returns the current access token.
//
// What it caches was not checked against the provider session (only the
// access token is new), so it keeps until, the bound of the validation
// that admitted the session (trustUntil): a refresh token outlives the
// idle timeout of the session it was issued in, and must not extend it.
func (s *sessions) refreshOnce(ctx context.Context, token, id string, until time.Time) (string, error) {
	deadline := s.now().Add(refreshWait)
	for {
		// Re-read: another replica may have refreshed already.
		cur, err := s.reread(ctx, token)
		if err != nil {
			return "", err
		}
		if s.fresh(cur) {
			s.remember(&live{id: id, rec: cur, checked: s.now(), until: until})
			return cur.AccessToken, nil
		}
		err = s.records.Create(ctx, refreshLockKey(id), []byte{1}, refreshLockTTL)
		if err == nil {
			defer s.records.Delete(context.WithoutCancel(ctx), refreshLockKey(id))
			// Read again under the lock: another replica may have
			// refreshed, and released the lock, since the read above —
			// and redeeming the refresh token it replaced would revoke
			// the whole family.
			if cur, err = s.reread(ctx, token); err != nil {
				return "", err
			}
			if s.fresh(cur) {
				s.remember(&live{id: id, rec: cur, checked: s.now(), until: until})
				return cur.AccessToken, nil
			}
			return s.refresh(ctx, token, id, cur, until)
		}
		if !errors.Is(err, store.ErrExists) {
			return "", err
		}
		if s.now().After(deadline) {
			return "", fmt.Errorf("%w: another replica's token refresh did not finish", errNoSession)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(refreshPoll):
		}
	}
}

// reread is stored for a refresh: errNoSession when the record is gone,
// or not this cookie's.
func (s *sessions) reread(ctx context.Context, token string) (*record, error) {
	rec, err := s.stored(ctx, token)
	if err == nil && rec == nil {
		err = errNoSession
	}
	return rec, err
}

// refresh redeems the refresh token, holding the session's refresh lock.
func (s *sessions) refresh(ctx context.Context, token, id string, cur *record, until time.Time) (string, error) {
	t, err := s.provider.Refresh(ctx, cur.RefreshToken)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNoSession, err)
	}
	rec := *cur
	rec.AccessToken, rec.AccessExpiry, rec.AccessLifetime = t.AccessToken, t.AccessExpiry, t.AccessLifetime
	if t.RefreshToken != "" {
		rec.RefreshToken = t.RefreshToken // rotated (DESIGN: refresh tokens rotate)
	}
	rec.AccessExpiry, rec.AccessLifetime = unixTime(unixSeconds(rec.AccessExpiry)), rec.AccessLifetime.Truncate(time.Second)
	if t.IDToken != "" {
		if t.Identity.Subject != rec.Identity.Subject {
			return "", fmt.Errorf("%w: refreshed tokens are about another user", errNoSession)
		}
		fresh := newRecord(t, s.keepIDToken(), rec.Origin, s.now(), 0)
		rec.IDToken, rec.Identity = fresh.IDToken, fresh.Identity
	}
	sealed, err := seal(token, &rec)
	if err != nil {
		return "", err
	}
	if err := s.records.Put(ctx, recordKey(id), sealed, rec.ExpiresAt.Sub(s.now())); err != nil {
		return "", err
	}
	s.remember(&live{id: id, rec: &rec, checked: s.now(), until: until})
	return rec.AccessToken, nil
}
