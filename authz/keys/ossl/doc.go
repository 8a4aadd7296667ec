// Package ossl is an RS256 signer on OpenSSL's libcrypto (the EVP API):
// RSA PKCS#1 v1.5 signatures of SHA-256 digests, as crypto.Signer, for
// keys.Options.WrapSigner. On this project's machines libcrypto's RSA is
// about 3.5 times as fast as crypto/rsa's, and signing is most of what a
// token costs.
//
// It is built only with `-tags openssl` and cgo (Debian: libssl-dev to
// build, libssl3 to run). Otherwise Available is false and New fails, and
// Aero2 signs with crypto/rsa: the pure-Go signer is the default and the
// fallback. PKCS#1 v1.5 is deterministic, so both give the same bytes for
// the same key and digest (the package's tests check that).
package ossl

import "errors"

// ErrUnavailable: the binary was built without OpenSSL.
var ErrUnavailable = errors.New("ossl: built without OpenSSL (build with -tags openssl and cgo)")

// ErrVerification: the signature is not valid.
var ErrVerification = errors.New("ossl: invalid signature")
