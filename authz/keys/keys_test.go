package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

var encKey = bytes.Repeat([]byte{7}, 32)

func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) {
		st := memory.New()
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("redis", func(t *testing.T) { fn(t, redistest.New(t)) })
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newManager(t *testing.T, st store.Store, app string, c *clock) *keys.Manager {
	t.Helper()
	m, err := keys.NewManager(keys.Options{Store: store.ForApp(st, app), EncryptionKey: encKey, Retention: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

func sign(t *testing.T, m *keys.Manager) string {
	t.Helper()
	tok, _, err := (&keys.JWTSigner{Keys: m}).Generate(t.Context(), fjwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}, &fjwt.Headers{Extra: map[string]any{"typ": "at+jwt", "kid": "forged"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.Unmarshal(raw, &h)
	return h
}

func TestFirstStartGeneratesEncryptedKeys(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		app := storetest.App(t)
		c := &clock{now: time.Now()}
		m := newManager(t, st, app, c)
		s, err := m.Set(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s.Current == nil || s.Next == nil || s.Current.ID == s.Next.ID || len(s.Previous) != 0 {
			t.Fatalf("first set: %+v", s)
		}
		if s.Current.ID != keys.Thumbprint(s.Current.Public) || s.Current.Public.N.BitLen() != keys.RSABits {
			t.Fatalf("kid %s is not the key's thumbprint, or the key is not %d bits", s.Current.ID, keys.RSABits)
		}

		// At rest: neither the private key nor even the kid is readable.
		raw, err := st.Get(t.Context(), app, "signing-keys")
		if err != nil {
			t.Fatal(err)
		}
		// The private key itself (an OpenSSL signer, built with -tags
		// openssl, does not give it out): read back by a manager that
		// signs with crypto/rsa.
		plain, err := keys.NewManager(keys.Options{Store: store.ForApp(st, app), EncryptionKey: encKey, Retention: time.Hour, Now: c.Now,
			WrapSigner: func(k *rsa.PrivateKey) crypto.Signer { return k }})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := plain.Set(t.Context())
		if err != nil || ps.Current.ID != s.Current.ID {
			t.Fatalf("read back: %v", err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(ps.Current.Signer)
		if bytes.Contains(raw, der[len(der)-64:]) || bytes.Contains(raw, []byte(s.Current.ID)) || bytes.Contains(raw, []byte("pkcs8")) {
			t.Fatal("stored key set is readable without the storage key")
		}

		// A second replica loads the same keys instead of making its own.
		m2 := newManager(t, st, app, c)
		s2, _ := m2.Set(t.Context())
		if s2.Current.ID != s.Current.ID || s2.Next.ID != s.Next.ID {
			t.Fatal("second manager generated different keys")
		}

		// The wrong storage key, or another application's name, cannot
		// open the set.
		wrong, _ := keys.NewManager(keys.Options{Store: store.ForApp(st, app), EncryptionKey: bytes.Repeat([]byte{8}, 32)})
		if err := wrong.Load(t.Context()); !errors.Is(err, keys.ErrCorrupt) {
			t.Fatalf("wrong storage key: %v", err)
		}
		other := storetest.App(t)
		if err := st.Put(t.Context(), other, "signing-keys", raw, 0); err != nil {
			t.Fatal(err)
		}
		moved, _ := keys.NewManager(keys.Options{Store: store.ForApp(st, other), EncryptionKey: encKey})
		if err := moved.Load(t.Context()); !errors.Is(err, keys.ErrCorrupt) {
			t.Fatalf("keys copied to another application: %v", err)
		}
	})
}

func TestConcurrentFirstStartsAgree(t *testing.T) {
	st := redistest.New(t)
	app := storetest.App(t)
	c := &clock{now: time.Now()}
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			m, _ := keys.NewManager(keys.Options{Store: store.ForApp(st, app), EncryptionKey: encKey, Now: c.Now})
			if err := m.Load(context.Background()); err != nil {
				t.Error(err)
				return
			}
			s, _ := m.Set(context.Background())
			ids[i] = s.Current.ID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("replicas starting together use different keys: %v", ids)
		}
	}
}

func TestRotationKeepsOldTokensValid(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		app := storetest.App(t)
		c := &clock{now: time.Now()}
		m := newManager(t, st, app, c)
		signer := &keys.JWTSigner{Keys: m}
		before, _ := m.Set(t.Context())
		old := sign(t, m)
		if h := header(t, old); h["kid"] != before.Current.ID || h["alg"] != "RS256" || h["typ"] != "at+jwt" {
			t.Fatalf("header %v: want kid %s (the caller's kid is ignored), RS256, typ kept", h, before.Current.ID)
		}

		// A replica that has not seen the rotation yet.
		stale := newManager(t, st, app, c)

		after, err := m.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if after.Current.ID != before.Next.ID || len(after.Previous) != 1 || after.Previous[0].ID != before.Current.ID || after.Next.ID == before.Next.ID {
			t.Fatalf("rotation: before %s/%s, after current %s next %s previous %d", before.Current.ID, before.Next.ID, after.Current.ID, after.Next.ID, len(after.Previous))
		}
		jwks, _ := m.JWKS(t.Context())
		if len(jwks.Keys) != 3 || len(jwks.Key(before.Current.ID)) != 1 || len(jwks.Key(after.Next.ID)) != 1 {
			t.Fatalf("JWKS after rotation has %d keys, want current, next and previous", len(jwks.Keys))
		}
		for _, k := range jwks.Keys {
			if !k.IsPublic() {
				t.Fatal("JWKS publishes a private key")
			}
		}
		if _, err := signer.Decode(t.Context(), old); err != nil {
			t.Fatalf("token signed before the rotation: %v", err)
		}
		fresh := sign(t, m)
		if header(t, fresh)["kid"] != after.Current.ID {
			t.Fatal("new tokens are not signed by the new current key")
		}
		// The stale replica verifies the new kid by re-reading the store.
		if _, err := (&keys.JWTSigner{Keys: stale}).Decode(t.Context(), fresh); err != nil {
			t.Fatalf("replica that missed the rotation: %v", err)
		}

		// After the retention, a second rotation drops the first key.
		c.Add(2 * time.Hour)
		if _, err := m.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.Add(2 * time.Hour)
		final, err := m.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if final.Lookup(before.Current.ID) != nil {
			t.Fatal("key retired longer than the retention is still published")
		}
		if _, err := signer.Decode(t.Context(), old); err == nil {
			t.Fatal("token signed by a dropped key still verifies")
		}
	})
}

func TestRotateIfDueAndLock(t *testing.T) {
	st := memory.New()
	defer st.Close()
	app := storetest.App(t)
	c := &clock{now: time.Now()}
	m := newManager(t, st, app, c)
	if did, err := m.RotateIfDue(t.Context(), time.Hour); did || err != nil {
		t.Fatalf("fresh key rotated: %v %v", did, err)
	}
	c.Add(time.Hour)
	if did, err := m.RotateIfDue(t.Context(), time.Hour); !did || err != nil {
		t.Fatalf("due key not rotated: %v %v", did, err)
	}
	// A held lock makes a rotation fail instead of racing.
	if err := st.Create(t.Context(), app, "signing-keys-lock", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(t.Context()); !errors.Is(err, keys.ErrRotationInProgress) {
		t.Fatalf("rotation under a held lock: %v", err)
	}
}

func TestDecodeRefusesForgedTokens(t *testing.T) {
	st := memory.New()
	defer st.Close()
	c := &clock{now: time.Now()}
	m := newManager(t, st, storetest.App(t), c)
	signer := &keys.JWTSigner{Keys: m}
	good := sign(t, m)
	parts := strings.Split(good, ".")
	s, _ := m.Set(t.Context())

	b64 := func(v any) string { j, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(j) }
	// alg none, with the real kid and payload.
	none := b64(map[string]any{"alg": "none", "kid": s.Current.ID}) + "." + parts[1] + "."
	// HS256 keyed with the public key's bytes: the algorithm-confusion
	// attack on verifiers that trust the header's alg.
	hsKey := x509.MarshalPKCS1PublicKey(s.Current.Public)
	hsSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hsKey}, (&jose.SignerOptions{}).WithHeader("kid", s.Current.ID))
	obj, _ := hsSigner.Sign([]byte(`{"sub":"mallory"}`))
	hs, _ := obj.CompactSerialize()
	// A valid signature from an unknown key.
	other := newManager(t, memory.New(), "other", c)
	foreign := sign(t, other)
	// A tampered payload.
	tampered := parts[0] + "." + b64(map[string]any{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}) + "." + parts[2]

	for name, tok := range map[string]string{"alg none": none, "HS256": hs, "unknown key": foreign, "tampered": tampered, "garbage": "a.b.c", "empty": ""} {
		if _, err := signer.Decode(t.Context(), tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := signer.Decode(t.Context(), good); err != nil {
		t.Fatalf("genuine token refused: %v", err)
	}
}

// faulty is a store whose Create and Get can be made to fail, standing in
// for a Redis that drops the connection at that very call.
type faulty struct {
	store.Store
	create func(ctx context.Context, app, key string, value []byte, ttl time.Duration) error
	get    func(ctx context.Context, app, key string) ([]byte, error)
}

func (f *faulty) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	if f.create != nil {
		return f.create(ctx, app, key, value, ttl)
	}
	return f.Store.Create(ctx, app, key, value, ttl)
}

func (f *faulty) Get(ctx context.Context, app, key string) ([]byte, error) {
	if f.get != nil {
		return f.get(ctx, app, key)
	}
	return f.Store.Get(ctx, app, key)
}

var errDown = fmt.Errorf("%w: connection reset", store.ErrUnavailable)

// A first start whose write of the new keys fails must not sign with them:
// no other replica could find them, so its tokens would verify nowhere else.
func TestFirstStartFailedWriteIsAnError(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		app := storetest.App(t)
		c := &clock{now: time.Now()}
		f := &faulty{Store: st, create: func(context.Context, string, string, []byte, time.Duration) error { return errDown }}
		m, err := keys.NewManager(keys.Options{Store: store.ForApp(f, app), EncryptionKey: encKey, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(t.Context()); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Load with a failed write: %v, want ErrUnavailable", err)
		}
		if s, err := m.Set(t.Context()); err == nil {
			t.Fatalf("Set after a failed first write gave keys %s that are in no store", s.Current.ID)
		}
		if _, err := st.Get(t.Context(), app, "signing-keys"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("store after a failed write: %v", err)
		}

		// Once the store answers again, the next load stores the keys it
		// signs with.
		f.create = nil
		if err := m.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		s, err := m.Set(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		other := newManager(t, st, app, c)
		if os, _ := other.Set(t.Context()); os.Current.ID != s.Current.ID {
			t.Fatalf("replica signs with %s, store holds %s", s.Current.ID, os.Current.ID)
		}
	})
}

// A replica that loses the first-start race re-reads the winner's keys;
// when that re-read fails, Load returns the error (it used to panic on the
// nil set).
func TestLostFirstStartRaceFailedReadIsAnError(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		app := storetest.App(t)
		c := &clock{now: time.Now()}
		var winner *keys.Manager
		f := &faulty{Store: st}
		f.create = func(ctx context.Context, a, key string, value []byte, ttl time.Duration) error {
			// Another replica stores its keys between this one's read
			// and its write, and then the store goes away.
			winner = newManager(t, st, app, c)
			f.get = func(context.Context, string, string) ([]byte, error) { return nil, errDown }
			return st.Create(ctx, a, key, value, ttl)
		}
		m, err := keys.NewManager(keys.Options{Store: store.ForApp(f, app), EncryptionKey: encKey, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(t.Context()); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Load after a lost race and a failed re-read: %v, want ErrUnavailable", err)
		}
		if _, err := m.Set(t.Context()); err == nil {
			t.Fatal("Set gave keys after a failed load")
		}

		// With the store back, the loser uses the winner's keys.
		f.create, f.get = nil, nil
		if err := m.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		s, _ := m.Set(t.Context())
		ws, _ := winner.Set(t.Context())
		if s.Current.ID != ws.Current.ID {
			t.Fatalf("loser signs with %s, winner with %s", s.Current.ID, ws.Current.ID)
		}
	})
}
