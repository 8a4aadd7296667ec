package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/store"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
// browser session ends — however it ends, since session.Manager runs its
// end hooks for every ending — each client that got tokens in it and
// registered a backchannel_logout_uri is sent a signed logout token, by
// POST, from a queue in the store: retried with backoff, bounded, and
// still there after a restart (on Redis).

// LogoutTokenType is the logout token's typ (Back-Channel Logout §2.4,
// as RFC 8725 §3.11 recommends): a logout token cannot pass for an ID
// token, nor an ID token for one.
const LogoutTokenType = "logout+jwt"

// backchannelEvent is the one member of a logout token's events (§2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// Store keys of the back-channel queue.
const (
	// bclSession is where an earlier release kept a browser session's
	// registrations, "clientID subject": read at logout still, so that
	// sessions registered before an upgrade are told too. Registrations
	// now live in the session's one index (oauthstore.LogoutTarget).
	bclSession = "bcl-sid:"
	// bclQueue is the set of queued job IDs; bclJob a job; bclLease held
	// by the replica sending it.
	bclQueue = "bcl-queue"
	bclJob   = "bcl-job:"
	bclLease = "bcl-lease:"
)

// Delivery settings. A logout token is made fresh for each attempt (new
// jti, iat, exp), so a retry is never refused as a replay of one the RP
// half-processed.
const (
	// bclMaxQueue bounds the queue: past it, new logouts are dropped (and
	// logged) rather than letting sign-outs fail or the store grow.
	bclMaxQueue = 10000
	// bclMaxAttempts, with backoff 1s, 2s, 4s, … (at most bclMaxBackoff)
	// between them: about half an hour of trying.
	bclMaxAttempts = 12
	bclMaxBackoff  = 5 * time.Minute
	// bclJobTTL: a job older than this is dropped, attempts left or not.
	bclJobTTL = 24 * time.Hour
	// bclTimeout bounds one POST; bclLeaseTTL outlives it.
	bclTimeout  = 5 * time.Second
	bclLeaseTTL = 30 * time.Second
	// logoutTokenLifetime: a logout token is for now (§2.6: RPs check exp).
	logoutTokenLifetime = 2 * time.Minute
	// bclSenders is how many logout tokens are sent at once.
	bclSenders = 4
)

// bclJobRecord is one logout to deliver.
type bclJobRecord struct {
	Client   string    `json:"client"`
	Subject  string    `json:"sub"`
	SID      string    `json:"sid"`
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
}

// backchannel is the provider's delivery state.
type backchannel struct {
	kick   chan struct{}
	client *http.Client
}

func (p *Provider) newBackchannel() {
	base := p.opts.HTTPClient
	c := &http.Client{Timeout: bclTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		// §2.5: the OP POSTs to the registered URI; a redirect would send
		// the token elsewhere.
		return http.ErrUseLastResponse
	}}
	if base != nil {
		c.Transport = base.Transport
	}
	p.bcl = &backchannel{kick: make(chan struct{}, 1), client: c}
}

// rememberLogoutTarget records, when a client with a back-channel logout
// URI gets tokens in browser session sid, that it must be told when the
// session ends, and under which subject it knows the user.
func (p *Provider) rememberLogoutTarget(ctx context.Context, c *Client, sid, sub string) error {
	if c == nil || c.backchannelURI == "" || sid == "" {
		return nil
	}
	// As long as the browser session or the client's tokens may live:
	// the client's own session may outlive its tokens.
	lt := c.Lifetimes
	ttl := max(lt.RefreshToken, lt.AccessToken, lt.IDToken, p.opts.Config.Session.AbsoluteTimeout)
	return p.tokens.AddLogoutTarget(ctx, sid, c.GetID(), sub, ttl)
}

// BackchannelLogout is a session end hook (session.Manager.OnEnd): it
// queues a logout for every client that got tokens in the sessions sids.
// Queuing, not sending: a slow or dead RP never holds up a sign-out. It is
// idempotent: a session ended twice queues nothing the second time.
func (p *Provider) BackchannelLogout(ctx context.Context, sids ...string) error {
	queued := 0
	for _, sid := range sids {
		targets, err := p.tokens.LogoutTargets(ctx, sid)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if err := p.enqueueLogout(ctx, bclJobRecord{Client: t.Client, Subject: t.Subject, SID: sid}); err != nil {
				return err
			}
			queued++
		}
		if err := p.tokens.DropLogoutTargets(ctx, sid, targets...); err != nil {
			return err
		}
		// An earlier release's registrations, in their own set.
		members, err := p.st.SetMembers(ctx, bclSession+sid)
		if err != nil {
			return err
		}
		for _, m := range members {
			client, sub, _ := strings.Cut(m, " ")
			if err := p.enqueueLogout(ctx, bclJobRecord{Client: client, Subject: sub, SID: sid}); err != nil {
				return err
			}
			queued++
		}
		if len(members) > 0 {
			if err := p.st.SetRemove(ctx, bclSession+sid, members...); err != nil {
				return err
			}
		}
	}
	if queued > 0 {
		select {
		case p.bcl.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (p *Provider) enqueueLogout(ctx context.Context, j bclJobRecord) error {
	ids, err := p.st.SetMembers(ctx, bclQueue)
	if err != nil {
		return err
	}
	if len(ids) >= bclMaxQueue {
		p.log.Warn("back-channel logout: queue full, logout not sent", "client", j.Client, "queued", len(ids))
		return nil
	}
	j.Created, j.Next = p.opts.Now().UTC(), p.opts.Now().UTC()
	id := randomID()
	data, _ := json.Marshal(j)
	if err := p.st.Put(ctx, bclJob+id, data, bclJobTTL); err != nil {
		return err
	}
	return p.st.SetAdd(ctx, bclQueue, 0, id)
}

// RunBackchannel delivers queued logouts until ctx ends: at once when one
// is queued here, and every second for the rest (retries, and jobs other
// replicas queued or a previous process left).
func (p *Provider) RunBackchannel(ctx context.Context) {
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			p.DeliverLogouts(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-p.bcl.kick:
			}
		}
	}()
}

// DeliverLogouts makes one pass over the queue: each job that is due, and
// that no other replica is sending (a lease record), is sent once.
func (p *Provider) DeliverLogouts(ctx context.Context) {
	ids, err := p.st.SetMembers(ctx, bclQueue)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("back-channel logout: reading the queue", "err", err)
		}
		return
	}
	sem := make(chan struct{}, bclSenders)
	var wg sync.WaitGroup
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.deliverOne(ctx, id)
		}()
	}
	wg.Wait()
}

func (p *Provider) deliverOne(ctx context.Context, id string) {
	st := p.st
	raw, err := st.Get(ctx, bclJob+id)
	if errors.Is(err, store.ErrNotFound) {
		_ = st.SetRemove(ctx, bclQueue, id) // expired (bclJobTTL) or done
		return
	}
	if err != nil {
		return
	}
	var j bclJobRecord
	if json.Unmarshal(raw, &j) != nil {
		_ = st.Delete(ctx, bclJob+id)
		_ = st.SetRemove(ctx, bclQueue, id)
		return
	}
	now := p.opts.Now()
	if now.Before(j.Next) {
		return
	}
	if err := st.Create(ctx, bclLease+id, []byte{1}, bclLeaseTTL); err != nil {
		return // another replica is sending it
	}
	defer st.Delete(context.WithoutCancel(ctx), bclLease+id)
	err = p.sendLogout(ctx, j)
	if err == nil {
		_ = st.Delete(ctx, bclJob+id)
		_ = st.SetRemove(ctx, bclQueue, id)
		p.log.Info("back-channel logout delivered", "client", j.Client, "attempts", j.Attempts+1)
		return
	}
	j.Attempts++
	if j.Attempts >= bclMaxAttempts || now.Sub(j.Created) >= bclJobTTL {
		p.log.Warn("back-channel logout: giving up", "client", j.Client, "attempts", j.Attempts, "err", err)
		_ = st.Delete(ctx, bclJob+id)
		_ = st.SetRemove(ctx, bclQueue, id)
		return
	}
	j.Next = now.Add(min(time.Second<<(j.Attempts-1), bclMaxBackoff))
	p.log.Info("back-channel logout failed, will retry", "client", j.Client, "attempts", j.Attempts, "retry_at", j.Next, "err", err)
	data, _ := json.Marshal(j)
	_ = st.Put(ctx, bclJob+id, data, bclJobTTL-now.Sub(j.Created))
}

// sendLogout POSTs a fresh logout token to the client's
// backchannel_logout_uri (§2.5): 200 or 204 is success.
func (p *Provider) sendLogout(ctx context.Context, j bclJobRecord) error {
	c, ok := p.clients.byID[j.Client]
	if !ok || c.backchannelURI == "" {
		return nil // no longer configured: nothing to send
	}
	tok, err := p.LogoutToken(ctx, j.Client, j.Subject, j.SID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, bclTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.backchannelURI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := p.bcl.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s answered %d", c.backchannelURI, res.StatusCode)
	}
	return nil
}

// LogoutToken signs a logout token for client (§2.4): iss, aud, iat, exp,
// jti, events, sid and sub, typ logout+jwt, and never a nonce (so that no
// ID token can pass for one).
func (p *Provider) LogoutToken(ctx context.Context, client, sub, sid string) (string, error) {
	now := p.opts.Now().UTC()
	claims := fjwt.MapClaims{
		"iss": p.issuer, "aud": []string{client}, "iat": now.Unix(), "exp": now.Add(logoutTokenLifetime).Unix(),
		"jti": randomID(), "events": map[string]any{backchannelEvent: map[string]any{}},
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	tok, _, err := p.signer.Generate(ctx, claims, &fjwt.Headers{Extra: map[string]any{"typ": LogoutTokenType}})
	return tok, err
}
