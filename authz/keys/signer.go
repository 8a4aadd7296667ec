package keys

import (
	"crypto"
	"crypto/rsa"
	"log/slog"

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
