// Package keys holds an application's token signing keys: generated on
// first start, stored encrypted in the store, identified by `kid`, and
// rotated through three states so that relying parties never see a token
// signed by a key they could not have fetched:
//
//	next     published in the JWKS before it signs anything
//	current  signs every new token
//	previous retired, still published until the tokens it signed expire
//
// Each application signs with one algorithm (Options.Algorithm): RS256 by
// default, ES256 (P-256) or EdDSA (Ed25519). Every key records its own
// algorithm, so a change of algorithm is one more rotation: the next key is
// generated for the new algorithm, published, and signs from the next
// rotation on, while keys of the old one verify until they retire.
//
// Signing goes through crypto.Signer only (Key.Signer), so a faster or
// hardware-backed signer can replace crypto/rsa without touching the flows.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/aero2/aero2/store"
)

// RSABits is the size of generated keys: RS256 needs 2048 at least
// (RFC 7518 §3.3), and larger keys make every signature slower.
const RSABits = 2048

// ErrUnknownKey: a token names a kid that is not in the key set.
var ErrUnknownKey = errors.New("keys: unknown key id")

// Algorithms an application may sign with (config signing_keys.algorithm).
// Asymmetric only: relying parties verify with the published keys.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// ErrAlgorithm: an algorithm Aero2 does not sign with.
var ErrAlgorithm = errors.New("keys: unsupported signing algorithm")

// Key is one signing key.
type Key struct {
	// ID is the JWK thumbprint (RFC 7638) of the public key, used as kid.
	ID string
	// Alg is the one algorithm the key signs and verifies with: RS256,
	// ES256 or EdDSA. A token naming another alg is refused, whatever
	// its kid (RFC 8725 §3.1).
	Alg jose.SignatureAlgorithm
	// Signer makes the signatures: the private key itself unless
	// Options.WrapSigner replaced it (RSA keys).
	Signer crypto.Signer
	// PublicKey verifies them: *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey.
	PublicKey crypto.PublicKey
	// Public is PublicKey for an RSA key, nil for others.
	Public *rsa.PublicKey
	// verifier is what Verify hands go-jose: built once per key, so a
	// verification parses nothing of the key (OpenSSL's, for RS256 in a
	// binary built with it), else PublicKey.
	verifier any
	// CreatedAt is when the key was generated; ActivatedAt when it became
	// current; RetiredAt when it stopped being current.
	CreatedAt, ActivatedAt, RetiredAt time.Time
}

// Set is the keys in force.
type Set struct {
	Current  *Key
	Next     *Key
	Previous []*Key
}

// Lookup finds a published key by kid.
func (s *Set) Lookup(kid string) *Key {
	for _, k := range s.All() {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// All is every published key: current, next, then previous.
func (s *Set) All() []*Key {
	out := []*Key{s.Current, s.Next}
	return append(out, s.Previous...)
}

// Store is what a Manager keeps the keys in: one application's records.
type Store interface {
	Name() string
	store.AppRecords
}

// Options configure a Manager.
type Options struct {
	// Store is the application's store handle (store.ForApp): the keys
	// are its records, and sealed to its name.
	Store Store
	// EncryptionKey (32 bytes) encrypts the keys at rest with AES-256-GCM.
	EncryptionKey []byte
	// Retention is how long a retired key stays published: the longest
	// lifetime of a token it may have signed.
	Retention time.Duration
	// RefreshEvery is how often the set is re-read from the store, so a
	// rotation made by another replica or by `aero2 keys rotate` is picked
	// up. Default 30s. Tokens signed by a key not yet known locally also
	// trigger a re-read (at most once a second).
	RefreshEvery time.Duration
	// Algorithm is what new keys sign with: RS256 (the default), ES256 or
	// EdDSA. Keys already stored keep theirs (see Load).
	Algorithm jose.SignatureAlgorithm
	// Generate makes a new RSA private key (RS256); nil means RSA 2048
	// from crypto/rsa.
	Generate func() (*rsa.PrivateKey, error)
	// WrapSigner turns an RSA private key into the signer used for
	// tokens; nil uses OpenSSL in a binary built with `-tags openssl`
	// (package ossl), else the key itself (crypto/rsa). ES256 and EdDSA
	// keys sign with crypto/ecdsa and crypto/ed25519.
	WrapSigner func(*rsa.PrivateKey) crypto.Signer
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Manager loads, caches and rotates one application's keys. It is safe for
// concurrent use.
type Manager struct {
	opts   Options
	sealer *sealer

	set      atomic.Pointer[Set]
	loadedAt atomic.Int64 // unix nanoseconds of the last successful load

	mu     sync.Mutex      // serialises loads
	parsed map[string]*Key // kid → parsed key, so reloads parse only new keys
	missAt time.Time       // last reload for an unknown kid
}

// NewManager checks the options; call Load before use.
func NewManager(opts Options) (*Manager, error) {
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 30 * time.Second
	}
	if opts.Algorithm == "" {
		opts.Algorithm = jose.RS256
	}
	if !slices.Contains(Algorithms, opts.Algorithm) {
		return nil, fmt.Errorf("%w %q", ErrAlgorithm, opts.Algorithm)
	}
	if opts.Generate == nil {
		opts.Generate = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, RSABits) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WrapSigner == nil {
		opts.WrapSigner = defaultWrap(opts.Logger)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s, err := newSealer(opts.EncryptionKey, opts.Store.Name())
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, sealer: s, parsed: map[string]*Key{}}, nil
}

// Load reads the keys from the store, generating and storing a first set
// when there is none (the first start of an application). Of replicas
// starting together, one set wins and all use it.
//
// When the next key is not of Options.Algorithm (the configuration
// changed), Load replaces it with a key that is: the next key has signed
// nothing, and its replacement is published now and signs from the next
// rotation, so relying parties have it before they see a token it signed.
func (m *Manager) Load(ctx context.Context) error {
	m.mu.Lock()
	s, err := m.loadLocked(ctx, true)
	m.mu.Unlock()
	if err != nil || s.Next.Alg == m.opts.Algorithm {
		return err
	}
	err = m.replaceNext(ctx)
	if errors.Is(err, ErrRotationInProgress) {
		// Another replica rotates or replaces it now; its set is read
		// within RefreshEvery.
		return nil
	}
	return err
}

// Stored reads the keys in the store without generating any (for `aero2
// keys list`): store.ErrNotFound when the application has none yet.
func (m *Manager) Stored(ctx context.Context) (*Set, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadLocked(ctx, false)
}

// Set returns the keys in force, re-reading them from the store when the
// cached copy is older than RefreshEvery. A failed re-read keeps the cached
// set (and is logged): signing must not stop because Redis blinked.
func (m *Manager) Set(ctx context.Context) (*Set, error) {
	s := m.set.Load()
	if s != nil && m.opts.Now().UnixNano()-m.loadedAt.Load() < int64(m.opts.RefreshEvery) {
		return s, nil
	}
	if s != nil {
		if !m.mu.TryLock() {
			return s, nil // another goroutine is reloading
		}
	} else {
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	ns, err := m.loadLocked(ctx, s == nil)
	if err != nil {
		if s != nil {
			m.opts.Logger.Warn("signing keys: reload failed, using cached keys", "app", m.opts.Store.Name(), "err", err)
			// Retry in a few seconds rather than on every request.
			m.loadedAt.Store(m.opts.Now().Add(5*time.Second - m.opts.RefreshEvery).UnixNano())
			return s, nil
		}
		return nil, err
	}
	return ns, nil
}

// lookup finds kid, re-reading the store once when it is unknown (a key
// another replica rotated in), but at most once a second so that tokens
// with made-up kids cannot turn into a flood of store reads.
func (m *Manager) lookup(ctx context.Context, kid string) (*Key, error) {
	s, err := m.Set(ctx)
	if err != nil {
		return nil, err
	}
	if k := s.Lookup(kid); k != nil {
		return k, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := m.opts.Now(); now.Sub(m.missAt) >= time.Second {
		m.missAt = now
		if s, err = m.loadLocked(ctx, false); err != nil {
			return nil, err
		}
	} else {
		s = m.set.Load()
	}
	if k := s.Lookup(kid); k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// loadLocked reads and decrypts the stored set; m.mu is held. With create,
// an absent set is generated.
func (m *Manager) loadLocked(ctx context.Context, create bool) (*Set, error) {
	ss, err := m.readStored(ctx)
	if errors.Is(err, store.ErrNotFound) && create {
		ss, err = m.createStored(ctx)
	}
	if err != nil {
		return nil, err
	}
	s, err := m.parse(ss)
	if err != nil {
		return nil, err
	}
	m.set.Store(s)
	m.loadedAt.Store(m.opts.Now().UnixNano())
	return s, nil
}

// createStored generates a first set and stores it. When another replica
// stored one first, that set is read back and used instead. Every failure is
// returned: a replica must never sign with keys that are in no store (the
// others could not verify its tokens), nor go on without any.
func (m *Manager) createStored(ctx context.Context) (*storedSet, error) {
	ss, err := m.generateStored()
	if err != nil {
		return nil, err
	}
	sealed, err := m.sealer.seal(ss)
	if err != nil {
		return nil, err
	}
	err = m.opts.Store.Create(ctx, recordKey, sealed, 0)
	switch {
	case err == nil:
		m.opts.Logger.Info("signing keys: generated the first keys", "app", m.opts.Store.Name(), "current", ss.Current.ID, "next", ss.Next.ID)
		return ss, nil
	case errors.Is(err, store.ErrExists):
		won, err := m.readStored(ctx)
		if err != nil {
			return nil, fmt.Errorf("signing keys: reading the keys another replica stored: %w", err)
		}
		return won, nil
	default:
		return nil, fmt.Errorf("signing keys: storing the first keys: %w", err)
	}
}

func (m *Manager) readStored(ctx context.Context) (*storedSet, error) {
	sealed, err := m.opts.Store.Get(ctx, recordKey)
	if err != nil {
		return nil, err
	}
	return m.sealer.open(sealed)
}

// newStoredKey generates a key of Options.Algorithm.
func (m *Manager) newStoredKey() (storedKey, error) {
	var priv crypto.Signer
	var err error
	switch m.opts.Algorithm {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = m.opts.Generate()
	}
	if err != nil {
		return storedKey{}, fmt.Errorf("generating a signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storedKey{}, err
	}
	sk := storedKey{ID: thumbprint(priv.Public()), PKCS8: der, CreatedAt: m.opts.Now().UTC()}
	if m.opts.Algorithm != jose.RS256 {
		sk.Alg = string(m.opts.Algorithm) // absent means RS256: the sets stored before ES256 and EdDSA
	}
	return sk, nil
}

func (m *Manager) generateStored() (*storedSet, error) {
	cur, err := m.newStoredKey()
	if err != nil {
		return nil, err
	}
	cur.ActivatedAt = cur.CreatedAt
	next, err := m.newStoredKey()
	if err != nil {
		return nil, err
	}
	return &storedSet{Version: 1, Current: cur, Next: next}, nil
}

// parse turns the stored set into keys, reusing keys parsed before (RSA
// key parsing precomputes CRT values and is not free).
func (m *Manager) parse(ss *storedSet) (*Set, error) {
	conv := func(sk storedKey) (*Key, error) {
		if k, ok := m.parsed[sk.ID]; ok {
			c := *k
			c.ActivatedAt, c.RetiredAt = sk.ActivatedAt, sk.RetiredAt
			return &c, nil
		}
		raw, err := x509.ParsePKCS8PrivateKey(sk.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
		}
		k := &Key{ID: sk.ID, Alg: jose.SignatureAlgorithm(sk.Alg), CreatedAt: sk.CreatedAt, ActivatedAt: sk.ActivatedAt, RetiredAt: sk.RetiredAt}
		if k.Alg == "" {
			k.Alg = jose.RS256
		}
		// The stored alg must fit the key: a key is never used with an
		// algorithm of another family.
		switch priv := raw.(type) {
		case *rsa.PrivateKey:
			if k.Alg == jose.RS256 {
				k.Signer, k.PublicKey, k.Public = m.opts.WrapSigner(priv), &priv.PublicKey, &priv.PublicKey
				k.verifier = rsaVerifier(&priv.PublicKey, m.opts.Logger)
			}
		case *ecdsa.PrivateKey:
			if k.Alg == jose.ES256 && priv.Curve == elliptic.P256() {
				k.Signer, k.PublicKey = priv, &priv.PublicKey
			}
		case ed25519.PrivateKey:
			if k.Alg == jose.EdDSA {
				k.Signer, k.PublicKey = priv, priv.Public()
			}
		}
		if k.Signer == nil {
			return nil, fmt.Errorf("signing key %s: a %T cannot sign %s", sk.ID, raw, k.Alg)
		}
		if k.verifier == nil {
			k.verifier = k.PublicKey
		}
		if thumbprint(k.PublicKey) != sk.ID {
			return nil, fmt.Errorf("signing key %s: kid does not match the key", sk.ID)
		}
		m.parsed[sk.ID] = k
		return k, nil
	}
	s := &Set{}
	var err error
	if s.Current, err = conv(ss.Current); err != nil {
		return nil, err
	}
	if s.Next, err = conv(ss.Next); err != nil {
		return nil, err
	}
	live := map[string]bool{s.Current.ID: true, s.Next.ID: true}
	for _, p := range ss.Previous {
		k, err := conv(p)
		if err != nil {
			return nil, err
		}
		s.Previous = append(s.Previous, k)
		live[k.ID] = true
	}
	for kid := range m.parsed {
		if !live[kid] {
			delete(m.parsed, kid)
		}
	}
	return s, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key,
// base64url: a kid that names the key itself, so two replicas can never
// give one kid to two keys.
func Thumbprint(pub *rsa.PublicKey) string { return thumbprint(pub) }

// thumbprint is the RFC 7638 thumbprint of an RSA, EC or Ed25519 key.
func thumbprint(pub crypto.PublicKey) string {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err) // only for key types other than RSA/EC/OKP
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}
