//go:build !(openssl && cgo)

package ossl

import (
	"crypto"
	"crypto/rsa"
	"io"
)

// Available reports whether the binary signs with OpenSSL.
const Available = false

// Version is the libcrypto in use; empty without OpenSSL.
func Version() string { return "" }

// Signer is never made without OpenSSL.
type Signer struct{ pub rsa.PublicKey }

// New fails without OpenSSL.
func New(*rsa.PrivateKey) (*Signer, error) { return nil, ErrUnavailable }

// Public is the public key.
func (s *Signer) Public() crypto.PublicKey { return &s.pub }

// Sign fails without OpenSSL.
func (s *Signer) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (s *Signer) Close() {}

// Verifier is never made without OpenSSL.
type Verifier struct{ pub rsa.PublicKey }

// NewVerifier fails without OpenSSL.
func NewVerifier(*rsa.PublicKey) (*Verifier, error) { return nil, ErrUnavailable }

// Verify fails without OpenSSL.
func (v *Verifier) Verify(digest, sig []byte) error { return ErrUnavailable }

// Public is the public key.
func (v *Verifier) Public() *rsa.PublicKey { return &v.pub }

// Close does nothing.
func (v *Verifier) Close() {}
