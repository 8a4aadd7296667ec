// Package session ties browser cookies to sessions in the store.
//
// The cookie carries only an opaque random token (256 bits); the store keys
// the session by the token's SHA-256, so a leaked store dump cannot be
// replayed as cookies. Sessions end after IdleTimeout without use and
// AbsoluteTimeout after sign-in, whichever comes first; a new sign-in always
// gets a new token (no session fixation).
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/store"
)

// ErrNoSession: the request has no live session (no cookie, a malformed or
// unknown token, or an expired session).
var ErrNoSession = errors.New("session: no session")

// tokenBytes is the cookie token's entropy: 256 bits.
const tokenBytes = 32

// Backend is what the manager needs from the store: the application's
// handle (store.ForApp), whose Name is the application's. When it can also
// broadcast (store.Broadcasts), ended sessions are announced to every
// replica.
type Backend interface {
	Name() string
	store.AppSessions
	GetUser(ctx context.Context, id string) (*store.User, error)
}

// Config sets up a Manager for one application.
type Config struct {
	// CookieName is the base name; CookieName (the function) makes the
	// cookie's name from it, Secure and Path.
	CookieName string
	// Secure marks cookies Secure. Only plain-http development on loopback
	// sets it false.
	Secure bool
	// Path is the application's base path ("/" when the application owns
	// its host). It is bound into the cookie's name, not set as its Path
	// attribute: the cookie has Path=/, which __Host- requires.
	Path            string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// Keys sign CSRF tokens; the first signs, all verify.
	Keys [][]byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Audit records sessions created and ended; nil records nothing.
	Audit audit.Logger
}

// Manager reads and writes one application's sessions.
type Manager struct {
	cfg      Config
	be       Backend
	app      string // be.Name()
	name     string
	touchGap time.Duration
	hooks    []EndHook // see OnEnd
}

// New returns a manager. cfg.Keys must hold at least one key.
func New(be Backend, cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	m := &Manager{cfg: cfg, be: be, app: be.Name(), name: CookieName(cfg.CookieName, cfg.Secure, cfg.Path)}
	// Writing last_seen on every request would make every page view a
	// store write; a tenth of the idle timeout (at most 5 minutes) keeps
	// the idle limit accurate to within that gap.
	m.touchGap = min(cfg.IdleTimeout/10, 5*time.Minute)
	return m
}

// CookieName is the name a cookie of Aero2 gets: base, then the
// application's base path (path; "" or "/" at the root) bound into the
// name, "/" written "!" ("aero2_session!apps!blog"), and, when Secure, the
// __Host- prefix. Every Secure cookie of Aero2 is __Host-: set with
// Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2), it can be set only
// by its own host over https, so a sibling host cannot plant or overwrite
// it. __Secure- would not do: it only requires Secure, and any subdomain
// of the same site can set a __Secure- cookie with Domain= for its
// parent. Because a __Host- cookie cannot be scoped by Path, the path is
// in the name instead: two applications on one host never read each
// other's cookie. (Issuer paths are plain letters, digits and "-._~",
// config.checkIssuerPath, so "!" keeps the names apart.) Plain http, for
// loopback development only, can have no prefix.
func CookieName(base string, secure bool, path string) string {
	if p := strings.Trim(path, "/"); p != "" {
		base += "!" + strings.ReplaceAll(p, "/", "!")
	}
	if secure {
		return "__Host-" + base
	}
	return base
}

// Name is the session cookie's name, prefix included.
func (m *Manager) Name() string { return m.name }

// App is the application the manager serves.
func (m *Manager) App() string { return m.app }

// Start signs userID in: it ends the session the request carried, if any
// (with its hooks: a new sign-in ends what the old session issued), and
// creates a new one with a new token.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, userID, idp string) (*store.Session, error) {
	return m.StartCounted(w, r, userID, idp, -1)
}

// StartCounted is Start for a caller that has read how many sessions the
// user has at most (store.SignIn.Sessions; -1: not read): while the new
// one keeps them within MaxSessionsPerUser, the cap's read of all the
// user's sessions is skipped. Concurrent sign-ins of one user may each
// count the others' sessions out and go past the cap together, by at
// most their number; the next sign-in that counts more than the cap ends
// every session beyond it.
func (m *Manager) StartCounted(w http.ResponseWriter, r *http.Request, userID, idp string, sessions int) (*store.Session, error) {
	ctx := r.Context()
	old, err := m.lookup(r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		return nil, err
	}
	if old != nil {
		if err := m.end(ctx, EndReplaced, old.UserID, old.ID); err != nil {
			return nil, err
		}
	}
	now := m.cfg.Now().UTC()
	for attempt := 0; ; attempt++ {
		token, id := newToken()
		s := &store.Session{
			ID: id, App: m.app, UserID: userID, IDP: idp,
			AuthTime: now, CreatedAt: now, LastSeen: now,
			ExpiresAt: now.Add(m.cfg.AbsoluteTimeout),
			IP:        clientIP(r), UserAgent: truncate(r.UserAgent(), 256),
		}
		err := m.be.CreateSession(ctx, s, m.cfg.IdleTimeout)
		if errors.Is(err, store.ErrExists) && attempt < 3 {
			continue // a 256-bit collision: never, but not silently
		}
		if err != nil {
			return nil, err
		}
		m.setCookie(w, token, s.ExpiresAt)
		reqlog.SetUser(ctx, userID)
		audit.Log(ctx, m.cfg.Audit, audit.Event{Type: audit.SessionCreated, App: m.app, User: userID, IDP: idp, Session: s.ID})
		// Best effort: the new session stands either way, and a store
		// that failed here fails the next sign-in's eviction or succeeds
		// in it.
		if sessions < 0 || sessions+1 > MaxSessionsPerUser {
			_ = m.evict(ctx, userID, s.ID)
		}
		return s, nil
	}
}

// Current returns the request's live session, or ErrNoSession. It enforces
// both timeouts itself rather than trusting the store's TTL alone, and
// records use (at most once per touch gap).
func (m *Manager) Current(r *http.Request) (*store.Session, error) {
	s, err := m.lookup(r)
	if err != nil {
		return nil, err
	}
	if s, err = m.check(r.Context(), s); err != nil {
		return nil, err
	}
	reqlog.SetUser(r.Context(), s.UserID) // for the access log
	return s, nil
}

// Alive reports whether the session with store ID id (the `sid` the
// provider puts in ID tokens) is live, by the same rules as Current, and
// records its use the same way: a proxy session that depends on it keeps
// it alive while the user is active. It answers false, not an error, for
// an absent or ended session.
func (m *Manager) Alive(ctx context.Context, id string) (bool, error) {
	d, err := m.AliveUntil(ctx, id)
	return d.Live(), err
}

// Deadline is what a check of a live session read (AliveUntil,
// AliveWithRecord): when it ends unless it is used again, and when a use
// would next be recorded. The zero Deadline is a session not alive.
type Deadline struct {
	// Ends is min(ExpiresAt, LastSeen+IdleTimeout), LastSeen as the
	// check left it (after its touch). LastSeen only moves forward, and
	// every earlier ending is an end (End, Revoke...), which is
	// broadcast where the store can: a caller that hears the broadcasts
	// may take the session for live until Ends, and no longer.
	Ends time.Time
	// Touch is LastSeen plus the touch gap: a use before it records
	// nothing (check), so a use hidden from the manager until then (the
	// proxy's cache) loses no activity the idle timeout counts, and one
	// hidden past it does.
	Touch time.Time
}

// Live reports whether d is a live session's (not the zero Deadline).
func (d Deadline) Live() bool { return !d.Ends.IsZero() }

// AliveUntil is Alive with the session's Deadline as the check read it;
// the zero Deadline for an absent or ended session.
func (m *Manager) AliveUntil(ctx context.Context, id string) (Deadline, error) {
	s, err := m.be.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Deadline{}, nil
	}
	if err == nil {
		s, err = m.check(ctx, s)
	}
	if errors.Is(err, ErrNoSession) {
		return Deadline{}, nil
	}
	if err != nil {
		return Deadline{}, err
	}
	return m.deadline(s), nil
}

// AliveWithRecord is AliveUntil for session id together with a read of
// the record key (of the same application, store.Records), in one store
// round trip: how the proxy loads a session of its own and the provider
// session it depends on. depends is called with the record (nil when
// absent) and says whether it names session id; only then is the session
// checked (and its use recorded, as Alive does), so that a caller's guess
// at id never keeps another session alive. until is the zero Deadline
// (not alive) when depends is false.
func (m *Manager) AliveWithRecord(ctx context.Context, id, key string, depends func(record []byte) bool) (until Deadline, record []byte, err error) {
	s, v, err := m.be.GetSessionAndRecord(ctx, id, key)
	if err != nil {
		return Deadline{}, nil, err
	}
	if !depends(v) || s == nil {
		return Deadline{}, v, nil
	}
	if s, err = m.check(ctx, s); errors.Is(err, ErrNoSession) {
		return Deadline{}, v, nil
	} else if err != nil {
		return Deadline{}, nil, err
	}
	return m.deadline(s), v, nil
}

// deadline is the Deadline of s as check left it.
func (m *Manager) deadline(s *store.Session) Deadline {
	ends := s.LastSeen.Add(m.cfg.IdleTimeout)
	if s.ExpiresAt.Before(ends) {
		ends = s.ExpiresAt
	}
	return Deadline{Ends: ends, Touch: s.LastSeen.Add(m.touchGap)}
}

// check applies the idle and absolute limits to a stored session and
// records its use at most once per touch gap.
func (m *Manager) check(ctx context.Context, s *store.Session) (*store.Session, error) {
	now := m.cfg.Now()
	if !now.Before(s.ExpiresAt) || now.Sub(s.LastSeen) >= m.cfg.IdleTimeout {
		if m.be.DeleteSession(ctx, s.ID) == nil {
			audit.Log(ctx, m.cfg.Audit, audit.Event{Type: audit.SessionEnded, App: m.app, User: s.UserID, Session: s.ID, Reason: EndExpired})
		}
		return nil, ErrNoSession
	}
	if now.Sub(s.LastSeen) >= m.touchGap {
		s.LastSeen = now.UTC()
		ttl := min(m.cfg.IdleTimeout, s.ExpiresAt.Sub(now))
		if err := m.be.TouchSession(ctx, s, ttl); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, ErrNoSession
			}
			return nil, err
		}
	}
	return s, nil
}

// CurrentUser returns the session and its user.
func (m *Manager) CurrentUser(r *http.Request) (*store.Session, *store.User, error) {
	s, err := m.Current(r)
	if err != nil {
		return nil, nil, err
	}
	u, err := m.be.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		// The user was deleted, or disabled: disabling ends every
		// session, but one may have started as it ran.
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	return s, u, nil
}

// lookup finds the stored session for the request's cookie, without the
// timeout checks.
func (m *Manager) lookup(r *http.Request) (*store.Session, error) {
	c, err := r.Cookie(m.name)
	if err != nil {
		return nil, ErrNoSession
	}
	id, ok := TokenID(c.Value)
	if !ok {
		return nil, ErrNoSession
	}
	s, err := m.be.GetSession(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	return s, err
}

func (m *Manager) setCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: m.name, Value: token, Path: "/",
		Expires: expires, HttpOnly: true, Secure: m.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

func (m *Manager) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: m.name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// newToken returns a cookie token and the ID the store keeps for it.
func newToken() (token, id string) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	id, _ = TokenID(token)
	return token, id
}

// TokenID validates a cookie token's shape and returns the store ID for it
// (its SHA-256, base64url). Malformed tokens are refused before any store
// lookup.
//
// It runs on every request that carries a cookie, so it works in
// fixed-size arrays: the returned ID is its one allocation (four before:
// the decoded bytes, the token's bytes to hash, and the ID's encoding).
func TokenID(token string) (string, bool) {
	id, ok := TokenKey(token)
	if !ok {
		return "", false
	}
	return string(id[:]), true
}

// Key is a store ID (TokenID's) in an array: a map indexed with
// string(key[:]) is looked up without a string made of it.
type Key [(sha256.Size*8 + 5) / 6]byte

// TokenKey is TokenID without the allocation: the ID in an array, for a
// caller that needs a string of it only sometimes (the proxy's session
// cache, looked up on every proxied request, and read from the store on
// a miss only).
func TokenKey(token string) (Key, bool) {
	const tokenChars = (tokenBytes*8 + 5) / 6 // base64url, unpadded
	var id Key
	if len(token) != tokenChars {
		return id, false
	}
	var in [tokenChars]byte
	copy(in[:], token)
	var raw [tokenBytes]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], in[:]); err != nil || n != tokenBytes {
		return id, false
	}
	sum := sha256.Sum256(in[:])
	base64.RawURLEncoding.Encode(id[:], sum[:])
	return id, true
}

// CSRFToken returns a token for forms of session s and the given purpose:
// an HMAC of both, so it is worthless in another session or form.
func (m *Manager) CSRFToken(s *store.Session, purpose string) string {
	return base64.RawURLEncoding.EncodeToString(m.mac(m.cfg.Keys[0], s.ID, purpose))
}

// VerifyCSRF checks a token made by CSRFToken with any configured key.
func (m *Manager) VerifyCSRF(s *store.Session, purpose, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	for _, k := range m.cfg.Keys {
		if hmac.Equal(got, m.mac(k, s.ID, purpose)) {
			return true
		}
	}
	return false
}

func (m *Manager) mac(key []byte, id, purpose string) []byte {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "aero2 csrf\x00%s\x00%s\x00%s", m.app, id, purpose)
	return h.Sum(nil)
}

// clientIP is the peer address (the proxy-aware one is the server's
// concern; this is only a hint shown on the account page).
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
