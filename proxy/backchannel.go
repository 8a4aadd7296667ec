package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aero2/aero2/store"
)

// The proxy is a client of its provider like any other, and registers
// for back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
// provider session ends, the provider POSTs a logout token here, and the
// proxy ends every proxy session that came from it.

const backchannelPath = "/.aero2/backchannel-logout"

// Index sets, kept next to the session records: the proxy sessions of a
// provider session (sid) and of a subject (sub), for logout tokens naming
// either.
func sidIndexKey(sid string) string { return "proxy-sid:" + sid }
func subIndexKey(sub string) string { return "proxy-sub:" + sub }

// bclJTIKey remembers a logout token's jti until it expires (§2.6: an RP
// SHOULD refuse a jti it has seen).
func bclJTIKey(iss, jti string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + jti))
	return "proxy-bcl-jti:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// LogoutToken is a verified logout token's claims.
type LogoutToken struct {
	Subject, SessionID, JTI string
	Expiry                  time.Time
}

// LogoutVerifier is a Provider that verifies logout tokens (Back-Channel
// Logout §2.6): signature by the provider's keys, iss, aud (the proxy's
// client), iat/exp, the back-channel event, no nonce, typ logout+jwt when
// typed, a jti, and sub or sid. Replay is the caller's to check.
type LogoutVerifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error)
}

// VerifyLogoutToken implements LogoutVerifier with go-oidc's logout
// verifier, plus the typ check go-oidc leaves out.
func (p *OIDCProvider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	// RFC 8725 §3.11, Back-Channel Logout §2.4: explicit typing keeps
	// other JWTs the provider signs from passing for logout tokens.
	if typ := strings.ToLower(jwtType(raw)); typ != "" && strings.TrimPrefix(typ, "application/") != "logout+jwt" {
		return nil, fmt.Errorf("typ %q is not a logout token's", typ)
	}
	lt, err := d.idVerifier.VerifyLogout(p.ctx(ctx), raw)
	if err != nil {
		return nil, err
	}
	// go-oidc checks that events holds the back-channel event; its
	// value must be a JSON object (§2.4).
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil {
		return nil, err
	}
	if ev := strings.TrimSpace(string(c.Events["http://schemas.openid.net/event/backchannel-logout"])); !strings.HasPrefix(ev, "{") {
		return nil, errors.New("the back-channel logout event is not a JSON object")
	}
	return &LogoutToken{Subject: lt.Subject, SessionID: lt.SessionID, JTI: lt.TokenID, Expiry: lt.Expiry}, nil
}

// backchannelLogout answers the provider's POST (§2.5, §2.8): 200 when
// the sessions it names have ended, 400 with invalid_request for a token
// that does not verify here, 503 when the store cannot be asked (the
// provider retries).
func (h *Handler) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || len(r.PostForm["logout_token"]) != 1 {
		h.apiError(w, http.StatusBadRequest, "invalid_request", "Send one logout_token in a form body.")
		return
	}
	raw := r.PostForm.Get("logout_token")
	if !compactJWS(raw) {
		h.log.Info("back-channel logout refused", "err", "not a compact JWS")
		h.apiError(w, http.StatusBadRequest, "invalid_request", "The logout token is not valid here.")
		return
	}
	// The application whose provider signed it: the one whose issuer is
	// the token's (unverified) iss and whose verifier accepts it — the
	// aud check makes it the application whose proxy client it is for.
	iss := jwtIssuer(raw)
	var lt *LogoutToken
	var ap *appProxy
	var lastErr error = errors.New("no application signs in at this issuer")
	for _, a := range h.order {
		v, ok := a.provider.(LogoutVerifier)
		if !ok || a.issuer != iss {
			continue
		}
		t, err := v.VerifyLogoutToken(r.Context(), raw)
		if err == nil {
			lt, ap = t, a
			break
		}
		lastErr = err
	}
	if lt == nil {
		h.log.Info("back-channel logout refused", "err", lastErr)
		h.apiError(w, http.StatusBadRequest, "invalid_request", "The logout token is not valid here.")
		return
	}
	ttl := time.Until(lt.Expiry) + time.Minute
	if err := ap.sessions.records.Create(r.Context(), bclJTIKey(iss, lt.JTI), []byte{1}, ttl); err != nil {
		if errors.Is(err, store.ErrExists) {
			h.log.Info("back-channel logout refused", "err", "jti replayed")
			h.apiError(w, http.StatusBadRequest, "invalid_request", "The logout token has been used before.")
			return
		}
		h.unavailable(w, r, err)
		return
	}
	n, err := ap.sessions.endFor(r.Context(), lt.SessionID, lt.Subject)
	if err != nil {
		// Let the provider retry with a new token: forget this jti.
		_ = ap.sessions.records.Delete(context.WithoutCancel(r.Context()), bclJTIKey(iss, lt.JTI))
		h.unavailable(w, r, err)
		return
	}
	h.log.Info("back-channel logout", "app", ap.name, "sessions", n)
	w.WriteHeader(http.StatusOK)
}

// compactJWS reports whether token is a JWS in the compact serialization
// (RFC 7515 §7.1): three base64url parts, nothing else. Go's base64
// decoders skip CR and LF, and go-jose verifies the decoded parts, so a
// token with line breaks inside would otherwise pass as the token it was
// cut from: one signed message, many spellings.
func compactJWS(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// jwtIssuer is the iss of a compact JWT's payload, unverified, or "".
func jwtIssuer(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Iss
}

// index records a new proxy session under its provider session and its
// subject, for back-channel logout from a provider other than Aero2's
// own, whose logout tokens name a sid or sub that only these sets map to
// proxy sessions.
//
// At Aero2's own provider (s.alive) it records nothing: there a proxy
// session is a reference to its provider session, and every way that one
// ends stops the proxy session without a set to find it by. Each
// validation from the store checks the provider session in the same
// round trip as the record (validate), so an ended one is refused at the
// next uncached read on any replica; the ending is broadcast after the
// provider session is deleted (session.Manager.end), and every replica
// that caches past session_cache drops the sessions of it
// (forgetProviderSession); and the logout token the provider sends drops
// them from the cache of the replica it reaches (endFor). The index was
// one key per sign-in (~300 B on Redis) that only ever sped up deleting
// records which are refused, and deleted, at their next use anyway.
func (s *sessions) index(ctx context.Context, id string, idn *Identity) error {
	if s.sets == nil || s.alive != nil {
		return nil
	}
	if idn.SessionID != "" {
		if err := s.sets.SetAdd(ctx, sidIndexKey(idn.SessionID), s.lifetime, id); err != nil {
			return err
		}
	}
	if idn.Subject != "" {
		return s.sets.SetAdd(ctx, subIndexKey(idn.Subject), s.lifetime, id)
	}
	return nil
}

// endFor ends the proxy sessions of provider session sid or, when the
// logout token names no sid, of subject sub (§2.7), and says how many.
func (s *sessions) endFor(ctx context.Context, sid, sub string) (int, error) {
	if s.sets == nil {
		return 0, nil
	}
	if s.alive != nil {
		// Not indexed (index): what this replica caches of them stops
		// here at once (the provider broadcasts the ending to every
		// replica itself). Every record, cached here or not, is refused,
		// and deleted, by its next validation, since the provider
		// session it names has ended.
		if sid == "" {
			return s.forgetSubject(sub), nil
		}
		ids := s.forgetProviderSession(sid)
		for _, id := range ids {
			if err := s.records.Delete(ctx, recordKey(id)); err != nil {
				return 0, err
			}
		}
		return len(ids), nil
	}
	key := sidIndexKey(sid)
	if sid == "" {
		key = subIndexKey(sub)
	}
	ids, err := s.sets.SetMembers(ctx, key)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		s.forget(id)
		if err := s.records.Delete(ctx, recordKey(id)); err != nil {
			return 0, err
		}
	}
	if err := s.announce(ctx, ids...); err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		if err := s.sets.SetRemove(ctx, key, ids...); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// forgetSubject drops the cached sessions of subject sub, and says how
// many there were.
func (s *sessions) forgetSubject(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, l := range s.cache {
		if l.rec.Identity.Subject == sub {
			s.drop(id)
			n++
		}
	}
	return n
}
