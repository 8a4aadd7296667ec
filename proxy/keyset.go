package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// How often the provider's JWKS may be fetched. go-oidc's RemoteKeySet
// fetches it again for every token it cannot verify with the keys it has
// — a made-up kid, or a known kid with a forged signature — so every such
// bearer token, which anyone can send, cost a request to the provider.
const (
	// keySetMinRefresh: a token whose key is not known fetches the JWKS
	// at most once per interval; meanwhile it is refused. A key rotated in
	// is picked up within this interval.
	keySetMinRefresh = 10 * time.Second
	// keySetMaxAge: keys are fetched again when in use and older than
	// this, so that a key the provider withdrew stops verifying.
	keySetMaxAge = time.Hour
)

// keySetAlgs are the signature algorithms a key set verifies (those
// go-oidc supports: no HMAC, no "none"). The verifiers narrow them to what
// the provider publishes.
var keySetAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// keySet is the provider's signing keys, fetched from its jwks_uri: an
// oidc.KeySet for the ID token and access token verifiers. It is safe for
// concurrent use; concurrent fetches are one fetch.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	tried   time.Time // the last fetch, successful or not
	fetched time.Time // the last successful fetch
	group   singleflight.Group
}

var _ oidc.KeySet = (*keySet)(nil)

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

// VerifySignature implements oidc.KeySet: it returns the payload of a JWS
// signed by one of the provider's keys. A key ID that matches a key whose
// signature does not verify is a forgery, not a rotation: it fetches
// nothing.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, keySetAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a jwt has exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, stale := k.current()
	if stale {
		keys = k.refresh(ctx, keySetMaxAge)
	}
	payload, known, err := verifyWith(jws, kid, keys)
	if known || err == nil {
		return payload, err
	}
	payload, _, err = verifyWith(jws, kid, k.refresh(ctx, keySetMinRefresh))
	return payload, err
}

// verifyWith checks jws against the keys with its kid (every key when it
// has none). known says whether any key had that kid.
func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) (payload []byte, known bool, err error) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		known = kid != ""
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true, nil
		}
	}
	if known {
		return nil, true, errors.New("the signature does not verify with the provider's key")
	}
	return nil, false, errors.New("no key of the provider's JWKS has signed this jwt")
}

// current returns the keys, and whether they are older than keySetMaxAge.
func (k *keySet) current() ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.fetched.IsZero() || k.now().Sub(k.fetched) >= keySetMaxAge
}

// refresh fetches the JWKS unless it was tried within interval, and
// returns the keys. A failed fetch keeps the keys there were.
func (k *keySet) refresh(ctx context.Context, interval time.Duration) []jose.JSONWebKey {
	v, _, _ := k.group.Do("", func() (any, error) {
		k.mu.Lock()
		if !k.tried.IsZero() && k.now().Sub(k.tried) < interval {
			defer k.mu.Unlock()
			return k.keys, nil
		}
		k.tried = k.now()
		k.mu.Unlock()
		// Shared by every waiting request: not bound to the one that
		// started it (the client's timeout bounds it).
		keys, err := k.fetch(context.WithoutCancel(ctx))
		k.mu.Lock()
		defer k.mu.Unlock()
		if err == nil {
			k.keys, k.fetched = keys, k.now()
		}
		return k.keys, nil
	})
	return v.([]jose.JSONWebKey)
}

// fetch reads the JWKS. Keys of a type or for a use that cannot verify a
// signature are skipped, as go-oidc does; only public keys are kept.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: the provider answered %s", res.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(raw, &key) != nil || !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}
