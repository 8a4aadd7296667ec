package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/aero2/aero2/config"
)

// A jwks_uri's keys are cached this long, refetched at most once per
// jwksMinRefresh when an assertion names a kid the cache lacks (the client
// rotated its key), and used at most jwksMaxStale after the last good
// fetch while the client's server fails. The fetch itself is bounded in
// time and size: the URI is the client's, and its server may be slow or
// hostile.
const (
	jwksFresh      = 5 * time.Minute
	jwksMinRefresh = 30 * time.Second
	jwksMaxStale   = time.Hour
	jwksTimeout    = 5 * time.Second
	maxJWKSBytes   = 64 << 10
)

// clientKeys are the public keys one private_key_jwt client signs its
// assertions with: configured inline (static), or fetched from its
// jwks_uri. Safe for concurrent use.
type clientKeys struct {
	static *jose.JSONWebKeySet
	uri    string
	http   *http.Client
	now    func() time.Time

	group      singleflight.Group
	mu         sync.Mutex
	set        *jose.JSONWebKeySet
	fetched    time.Time // of the last good fetch
	failed     time.Time // of the last failed fetch
	kidRefresh time.Time // of the last fetch for an unknown kid
}

// errJWKSUnavailable: the client's jwks_uri could not be fetched lately.
var errJWKSUnavailable = errors.New("the client's jwks_uri could not be fetched")

// keys returns the client's keys that may have signed with kid ("" for
// any). For a jwks_uri it fetches when the cache is stale, and when no
// cached key has kid (the client rotated its key) — that at most once per
// jwksMinRefresh, so that a stream of assertions with made-up kids cannot
// make Aero2 fetch for each. After a failed fetch it waits as long before
// the next, using the last good keys meanwhile (for at most jwksMaxStale).
func (k *clientKeys) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if k.static != nil {
		return match(k.static, kid), nil
	}
	now := k.now()
	k.mu.Lock()
	set, fetched, failed := k.set, k.fetched, k.failed
	fresh := set != nil && now.Sub(fetched) <= jwksFresh
	if fresh {
		if m := match(set, kid); len(m) > 0 {
			k.mu.Unlock()
			return m, nil
		}
		if now.Sub(k.kidRefresh) < jwksMinRefresh {
			k.mu.Unlock()
			return nil, nil
		}
		k.kidRefresh = now
	}
	k.mu.Unlock()
	if !fresh && !failed.IsZero() && now.Sub(failed) < jwksMinRefresh {
		if set != nil && now.Sub(fetched) < jwksMaxStale {
			return match(set, kid), nil
		}
		return nil, errJWKSUnavailable
	}
	got, err := k.refresh(ctx)
	if err != nil {
		if set != nil && now.Sub(fetched) < jwksMaxStale {
			return match(set, kid), nil
		}
		return nil, err
	}
	return match(got, kid), nil
}

// refresh fetches the keys, once for every caller waiting at the same
// time.
func (k *clientKeys) refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ch := k.group.DoChan("", func() (any, error) {
		// Not the caller's context: one caller giving up must not fail
		// the fetch for the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksTimeout)
		defer cancel()
		set, err := fetchJWKS(fctx, k.http, k.uri)
		k.mu.Lock()
		defer k.mu.Unlock()
		if err != nil {
			k.failed = k.now()
			return nil, err
		}
		k.set, k.fetched, k.failed = set, k.now(), time.Time{}
		return set, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*jose.JSONWebKeySet), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetchJWKS GETs a client's JWKS (fetchClientDocument), and keeps only
// the keys that can verify a client assertion.
func fetchJWKS(ctx context.Context, hc *http.Client, raw string) (*jose.JSONWebKeySet, error) {
	body, err := fetchClientDocument(ctx, hc, raw, "application/jwk-set+json, application/json", maxJWKSBytes)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	// Key by key: one key go-jose cannot read (a type it does not know)
	// must not hide the others.
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("jwks_uri: not a JWK Set: %w", err)
	}
	set := &jose.JSONWebKeySet{}
	for _, raw := range doc.Keys {
		var jk jose.JSONWebKey
		if jk.UnmarshalJSON(raw) == nil && config.CheckAssertionKey(jk) == nil {
			set.Keys = append(set.Keys, jk)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("jwks_uri: no public signing key in the set")
	}
	return set, nil
}

// fetchClientDocument GETs a document a client publishes (its jwks_uri,
// its sector_identifier_uri): https only (plain http on a loopback host,
// which the configuration allows only with insecure_dev), no redirects
// (the URI is registered exactly; a redirect could lead anywhere), status
// 200, at most max bytes.
func fetchClientDocument(ctx context.Context, hc *http.Client, raw, accept string, max int) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || !(u.Scheme == "https" || (u.Scheme == "http" && config.IsLoopbackHost(u.Hostname()))) {
		return nil, fmt.Errorf("%q: not an https URL", raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(body) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return body, nil
}

// match returns the keys named kid, or every key for "".
func match(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}
