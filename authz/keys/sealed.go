package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aero2/aero2/store"
)

// recordKey is where an application's key set lives in the store.
const recordKey = store.SigningKeysKey

// sealVersion prefixes every sealed value, so the format can change later.
const sealVersion = 1

// ErrCorrupt: the stored keys could not be decrypted (a different
// storage_key, or tampering) or decoded.
var ErrCorrupt = errors.New("keys: stored signing keys cannot be decrypted (was secrets.storage_key changed?)")

type storedKey struct {
	ID string `json:"kid"`
	// Alg is RS256 when empty (sets stored before ES256 and EdDSA).
	Alg         string    `json:"alg,omitempty"`
	PKCS8       []byte    `json:"pkcs8"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
}

type storedSet struct {
	Version  int         `json:"v"`
	Current  storedKey   `json:"current"`
	Next     storedKey   `json:"next"`
	Previous []storedKey `json:"previous,omitempty"`
}

// sealer encrypts the key set with AES-256-GCM. The application's name is
// the additional data, so one application's sealed keys copied under
// another's name fail to open instead of being used there.
type sealer struct {
	aead cipher.AEAD
	aad  []byte
}

func newSealer(key []byte, app string) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("keys: encryption key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, aad: []byte("aero2 signing keys\x00" + app)}, nil
}

func (s *sealer) seal(ss *storedSet) ([]byte, error) {
	plain, err := json.Marshal(ss)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) // a random 96-bit nonce per write; writes are rare
	return s.aead.Seal(out, out[1:], plain, s.aad), nil
}

func (s *sealer) open(sealed []byte) (*storedSet, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, ErrCorrupt
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], s.aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	var ss storedSet
	if err := json.Unmarshal(plain, &ss); err != nil || ss.Current.ID == "" || ss.Next.ID == "" {
		return nil, ErrCorrupt
	}
	return &ss, nil
}
