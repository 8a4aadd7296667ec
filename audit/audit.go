// Package audit is Aero2's audit log: one structured event for each
// security decision (a sign-in, a session begun or ended, a token issued
// or refused, a policy denial, a rate limit hit, an administrator's
// action, a configuration reload), written as JSON lines to a handler of
// its own, apart from the operational log.
//
// An Event holds identifiers and short machine words only: a user's ID,
// never a name or an email; a client's ID, never its secret; never a
// token, a code, a cookie or a session's cookie value. The request an
// event happened in adds its request ID and client address (from
// reqlog); nothing else of the request is read.
//
// Parts of Aero2 take a Logger and call Log; a nil Logger is valid
// wherever one is taken (Log on it does nothing), so that tests and
// in-process callers need not build one.
package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/reqlog"
)

// Type is what happened. Its values are stable: operators alert on them.
type Type string

// The events. Reason words are listed in docs/audit.md.
const (
	// SignInSucceeded: a user signed in at an identity provider (IDP);
	// SignInFailed: a sign-in was refused or could not finish (Reason).
	SignInSucceeded Type = "sign_in.succeeded"
	SignInFailed    Type = "sign_in.failed"
	// AccountLinked: a further identity (IDP) was linked to a user.
	AccountLinked Type = "account.linked"
	// SessionCreated and SessionEnded (Reason: sign_out, logout,
	// expired, replaced, account, revoked, …): browser sessions.
	SessionCreated Type = "session.created"
	SessionEnded   Type = "session.ended"
	// ConsentGiven and ConsentRemoved: a user's consent to a client.
	ConsentGiven   Type = "consent.given"
	ConsentRemoved Type = "consent.removed"
	// TokenIssued (GrantType says how), TokenRefreshed (a refresh token
	// was redeemed), TokenRevoked (RFC 7009), TokenRefused (Reason:
	// invalid_grant, invalid_client, …).
	TokenIssued    Type = "token.issued"
	TokenRefreshed Type = "token.refreshed"
	TokenRevoked   Type = "token.revoked"
	TokenRefused   Type = "token.refused"
	// ReuseDetected: a used authorization code, refresh token or device
	// code was presented again; its whole grant was revoked (Reason says
	// which kind).
	ReuseDetected Type = "token.reuse_detected"
	// PolicyDenied: a route's policy refused a signed-in user (Route).
	PolicyDenied Type = "policy.denied"
	// RateLimited: a request was refused by a rate limit (Reason: the
	// limit's name under server.rate_limits).
	RateLimited Type = "rate_limit.hit"
	// AdminAction: an administrator's command that changes something
	// (Action, Target, Actor, ActorHost, Outcome, Reason when it failed).
	AdminAction Type = "admin.action"
	// ConfigReloaded: the configuration was reloaded (Reason: ok or
	// invalid).
	ConfigReloaded Type = "config.reloaded"
)

// Event is one audit record. Empty fields are left out of the line.
type Event struct {
	Type Type
	// App is the application the event happened in.
	App string
	// User is the user's ID (the sub of the tokens Aero2 issues).
	User string
	// Client is the OAuth client's ID.
	Client string
	// IDP is the identity provider's ID (config identity_providers[].id).
	IDP string
	// Route is the proxy route (its config path, such as routes[0]).
	Route string
	// Session is a browser session's store ID: the hash of its cookie,
	// never the cookie itself (it cannot be turned back into one). The
	// account page shows it as the session's handle.
	Session string
	// GrantType is the token request's grant_type.
	GrantType string
	// Reason is a short machine word saying why.
	Reason string
	// Actor, Action and Target describe an administrator's action: who
	// (the operating-system user of the command), what (users.disable),
	// and on what (a user ID, a session ID, a client ID, a key ID).
	// ActorHost is the host the command ran on.
	Actor, ActorHost, Action, Target string
	// Outcome is how an administrator's action ended: succeeded or
	// failed (Reason then says why).
	Outcome string
}

// The outcomes of an administrator's action (Event.Outcome).
const (
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Logger records events. Implementations must be safe for concurrent
// use and must not block the request for long.
type Logger interface {
	Log(ctx context.Context, e Event)
}

// Log sends e to l; a nil l records nothing.
func Log(ctx context.Context, l Logger, e Event) {
	if l != nil {
		l.Log(ctx, e)
	}
}

// New returns a Logger writing one JSON object per line to w: time,
// "level":"INFO", "msg":"audit", the event's type as "event", its
// non-empty fields, and the request's request_id and client_addr when
// the event happened while serving one.
func New(w io.Writer) Logger {
	return &slogLogger{l: slog.New(logging.NewJSON(w, slog.LevelInfo))}
}

// Open returns the Logger that log.audit names: "" none (nil), "stdout"
// or "stderr" those streams, anything else a file path, appended to and
// created readable by its owner only. close releases the file (a no-op
// otherwise). The server and the administration commands both open the
// audit log this way.
func Open(dest string) (l Logger, close func() error, err error) {
	switch dest {
	case "":
		return nil, func() error { return nil }, nil
	case "stdout":
		return New(os.Stdout), func() error { return nil }, nil
	case "stderr":
		return New(os.Stderr), func() error { return nil }, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("log.audit: %w", err)
	}
	return New(f), f.Close, nil
}

// NewHandler returns a Logger over any slog handler (its level Info).
func NewHandler(h slog.Handler) Logger { return &slogLogger{l: slog.New(h)} }

type slogLogger struct{ l *slog.Logger }

func (s *slogLogger) Log(ctx context.Context, e Event) {
	var buf [16]slog.Attr
	attrs := append(buf[:0], slog.String("event", string(e.Type)))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("app", e.App)
	add("user", e.User)
	add("client_id", e.Client)
	add("idp", e.IDP)
	add("route", e.Route)
	add("session", e.Session)
	add("grant_type", e.GrantType)
	add("reason", e.Reason)
	add("actor", e.Actor)
	add("actor_host", e.ActorHost)
	add("action", e.Action)
	add("target", e.Target)
	add("outcome", e.Outcome)
	id, addr := reqlog.Request(ctx)
	add("request_id", id)
	add("client_addr", addr)
	// The event outlives a cancelled request: it is written regardless.
	s.l.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "audit", attrs...)
}

// Tee returns a Logger that sends each event to every non-nil logger of
// ls, in order (the audit file and the metrics that count events).
func Tee(ls ...Logger) Logger {
	var out tee
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

type tee []Logger

func (t tee) Log(ctx context.Context, e Event) {
	for _, l := range t {
		l.Log(ctx, e)
	}
}
