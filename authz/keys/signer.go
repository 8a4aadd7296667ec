package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"log/slog"

	"github.com/go-jose/go-jose/v3"

	"github.com/aero2/aero2/authz/keys/ossl"
)

// SignerName names what makes RS256 signatures in this binary: OpenSSL's
// libcrypto when it was built with `-tags openssl` (and cgo), else Go's
// crypto/rsa. `aero2 version` prints it.
func SignerName() string {
	if ossl.Available {
		return "RS256 by " + ossl.Version()
	}
	return "RS256 by crypto/rsa"
}

// defaultWrap is WrapSigner's default: the OpenSSL signer when the binary
// has one, crypto/rsa otherwise, and crypto/rsa for a key libcrypto does
// not take (logged): both make the same signatures, so a fallback changes
// only the speed.
func defaultWrap(log *slog.Logger) func(*rsa.PrivateKey) crypto.Signer {
	if !ossl.Available {
		return func(k *rsa.PrivateKey) crypto.Signer { return k }
	}
	return func(k *rsa.PrivateKey) crypto.Signer {
		s, err := ossl.New(k)
		if err != nil {
			log.Warn("signing keys: OpenSSL did not take a key; signing it with crypto/rsa", "err", err)
			return k
		}
		return s
	}
}

// rsaVerifier is what verifies an RS256 key's tokens: OpenSSL's verifier,
// built once per key, when the binary has OpenSSL; else the public key,
// for go-jose's crypto/rsa (which rebuilds its modulus from the key on
// every verification: Go has no public API to keep it).
func rsaVerifier(pub *rsa.PublicKey, log *slog.Logger) any {
	if !ossl.Available {
		return pub
	}
	v, err := ossl.NewVerifier(pub)
	if err != nil {
		log.Warn("signing keys: OpenSSL did not take a public key; verifying with crypto/rsa", "err", err)
		return pub
	}
	return osslVerifier{v}
}

// osslVerifier is go-jose's OpaqueVerifier on an OpenSSL key.
type osslVerifier struct{ v *ossl.Verifier }

func (o osslVerifier) VerifyPayload(payload, sig []byte, alg jose.SignatureAlgorithm) error {
	if alg != jose.RS256 {
		return fmt.Errorf("keys: an RS256 key does not verify %q", alg)
	}
	sum := sha256.Sum256(payload)
	return o.v.Verify(sum[:], sig)
}
