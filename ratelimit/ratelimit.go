// Package ratelimit limits requests per client address and per account or
// client, with the limits of config.RateLimits, in buckets the store keeps
// (store.RateLimits: in process for the memory store, shared by every
// replica through Redis).
//
// Each endpoint spends from its limit (Allow, or Check with Spend) before
// doing its work. Failure limits (failed client authentication,
// forward-auth denials) are looked at (Peek) before the work and spent
// when it fails, so that an address that has used them up is refused
// before any secret is checked. One Check is one store round trip, and
// spends all it is asked to or nothing.
//
// A limit that cannot be asked (the store is down) allows: the limiter
// protects the endpoints, whose own store calls then fail closed.
package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// Name names a limit: its key under server.rate_limits.
type Name string

// The limits (docs/config.md, "Rate limits").
const (
	SignIn             Name = "sign_in"
	Callback           Name = "callback"
	Authorize          Name = "authorize"
	Token              Name = "token"
	ClientAuthFailures Name = "client_auth_failures"
	Introspect         Name = "introspect"
	Revoke             Name = "revoke"
	ForwardAuthDenials Name = "forward_auth_denials"
	AnonymousState     Name = "anonymous_state"
	// DeviceAuthorization and UserCodeFailures: the device flow (RFC
	// 8628 §5.1, §5.2).
	DeviceAuthorization Name = "device_authorization"
	UserCodeFailures    Name = "user_code_failures"
)

// Key is what a limit counts: a client address, or an account or client.
type Key struct {
	subject bool
	id      string
}

// Address is the key of r's client address, which the server has already
// resolved behind trusted proxies (RemoteAddr). An IPv6 client is counted
// by its /64: one host commonly holds a whole /64, and would otherwise
// have 2^64 buckets to choose from.
func Address(r *http.Request) Key {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return Key{id: "unknown"}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return Key{id: p.String()}
	}
	return Key{id: a.String()}
}

// Account is the key of a user (an ID Aero2 made, never client input).
func Account(userID string) Key { return Key{subject: true, id: userID} }

// Client is the key of an OAuth client. Only IDs of configured clients
// may be keys: anyone can send any client_id, and each new one would be a
// bucket in the store.
func Client(id string) Key { return Key{subject: true, id: id} }

// Limiter spends from the configured limits. A nil *Limiter limits
// nothing. It is safe for concurrent use.
type Limiter struct {
	st    store.RateLimits
	rules map[Name]rule
	log   *slog.Logger
	audit audit.Logger
}

// ReportTo makes every refusal an audit.RateLimited event on a (the audit
// log, and the rate-limit metrics). Call it before the limiter is used.
func (l *Limiter) ReportTo(a audit.Logger) {
	if l != nil {
		l.audit = a
	}
}

type rule struct {
	address, subject *store.Rate // nil: not limited that way
}

// New returns the limiter of cfg, or nil when cfg turns limits off.
func New(st store.RateLimits, cfg config.RateLimits, log *slog.Logger) *Limiter {
	if cfg.Disabled {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Limiter{st: st, rules: map[Name]rule{}, log: log}
	for _, r := range cfg.Rules() {
		l.rules[Name(r.Name)] = rule{address: storeRate(r.Address), subject: storeRate(r.Subject)}
	}
	return l
}

func storeRate(r *config.Rate) *store.Rate {
	if r == nil || r.Off() {
		return nil
	}
	return &store.Rate{Requests: r.Requests, Period: r.Per, Burst: r.Burst}
}

// Decision is a limit's answer: Allowed, or how long to wait.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration
}

var allowed = Decision{Allowed: true}

// Take is what one limit spends (Spend) or looks at (Peek): its buckets
// for the given keys.
type Take struct {
	name Name
	n    int
	keys []Key
}

// Spend takes one request from name's bucket of each key.
func Spend(name Name, keys ...Key) Take { return Take{name, 1, keys} }

// Peek looks whether name's bucket of each key has room for one more
// request, without spending.
func Peek(name Name, keys ...Key) Take { return Take{name, 0, keys} }

// Allow is Check of one Spend.
func (l *Limiter) Allow(ctx context.Context, app string, name Name, keys ...Key) Decision {
	return l.Check(ctx, app, Spend(name, keys...))
}

// Check asks every bucket of takes at once (one store round trip): it
// allows when each has room, and only then spends.
func (l *Limiter) Check(ctx context.Context, app string, takes ...Take) Decision {
	if l == nil || exempt(ctx) {
		return allowed
	}
	var buckets []store.RateBucket
	for _, t := range takes {
		ru, ok := l.rules[t.name]
		if !ok {
			panic("ratelimit: unknown limit " + string(t.name))
		}
		for _, k := range t.keys {
			rate, kind := ru.address, "a"
			if k.subject {
				rate, kind = ru.subject, "s"
			}
			if rate != nil && k.id != "" {
				buckets = append(buckets, store.RateBucket{Key: "rl:" + string(t.name) + ":" + kind + ":" + k.id, Rate: *rate, N: t.n})
			}
		}
	}
	if len(buckets) == 0 {
		return allowed
	}
	res, err := l.st.RateLimit(ctx, app, buckets...)
	if err != nil {
		l.log.Warn("rate limit unavailable; allowing", "app", app, "limit", takes[0].name, "err", err)
		return allowed
	}
	if !res.Allowed {
		// One store answer covers every bucket: the first limit asked
		// names the refusal.
		audit.Log(ctx, l.audit, audit.Event{Type: audit.RateLimited, App: app, Reason: string(takes[0].name)})
	}
	return Decision{Allowed: res.Allowed, RetryAfter: res.RetryAfter}
}

type exemptKey struct{}

// Exempt marks ctx as a request Aero2 makes to itself in process (the
// proxy calling its own provider). It was limited where it came in; its
// address is Aero2's own, and its client the proxy's, which every user
// shares.
func Exempt(ctx context.Context) context.Context { return context.WithValue(ctx, exemptKey{}, true) }

func exempt(ctx context.Context) bool { v, _ := ctx.Value(exemptKey{}).(bool); return v }

// Code is the OAuth error code of a refusal. The authorization endpoint
// defines temporarily_unavailable for "temporary overloading" (RFC 6749
// §4.1.2.1); the token, introspection and revocation endpoints define
// nothing for it, and answer the same code, with status 429 and
// Retry-After saying the rest.
const Code = "temporarily_unavailable"

// retrySeconds rounds up: a client that waits the whole seconds it is told
// finds room.
func (d Decision) retrySeconds() int {
	return max(1, int(math.Ceil(d.RetryAfter.Seconds())))
}

// Message says what happened and when to come back.
func (d Decision) Message() string {
	return fmt.Sprintf("Too many requests. Try again in %d seconds.", d.retrySeconds())
}

// header sets the headers of every refusal: the wait (RFC 9110 §10.2.3,
// RFC 6585 §4), and no caching.
func (d Decision) header(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(d.retrySeconds()))
	w.Header().Set("Cache-Control", "no-store")
}

// WriteJSON answers an API request refused by d: 429 with an OAuth-style
// error body (RFC 6749 §5.2's shape).
func WriteJSON(w http.ResponseWriter, d Decision) {
	d.header(w)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusTooManyRequests)
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{Code, d.Message()})
}

// WritePage answers a browser refused by d: 429 with an error page.
// appName is shown on it ("" for none).
func WritePage(w http.ResponseWriter, appName string, d Decision) {
	d.header(w)
	web.Error(w, http.StatusTooManyRequests, appName, "Too many requests", web.ErrorData{Message: d.Message(), Code: Code})
}
