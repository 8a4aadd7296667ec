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
