//go:build openssl && cgo

package ossl

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/err.h>
#include <openssl/crypto.h>

// aero2_pkey parses a PKCS#1 RSAPrivateKey. NULL on failure.
static EVP_PKEY *aero2_pkey(const unsigned char *der, long len) {
	const unsigned char *p = der;
	ERR_clear_error();
	EVP_PKEY *k = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
	if (k != NULL && p != der + len) { // trailing bytes: not one key
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

// aero2_sign signs a SHA-256 digest with PKCS#1 v1.5 padding, all in one
// call: OpenSSL's error queue is per thread, and a goroutine may move to
// another thread between two cgo calls. The context is made and freed
// here, per call: the key is shared read-only by every thread (safe in
// OpenSSL 3), a context is not. Returns 0 on success, else an OpenSSL
// error code (or 1 when OpenSSL queued none).
static unsigned long aero2_sign(EVP_PKEY *k, const unsigned char *digest, size_t dlen, unsigned char *sig, size_t *siglen) {
	unsigned long e = 0;
	ERR_clear_error();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	if (ctx == NULL
		|| EVP_PKEY_sign_init(ctx) <= 0
		|| EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0
		|| EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0
		|| EVP_PKEY_sign(ctx, sig, siglen, digest, dlen) <= 0) {
		e = ERR_get_error();
		if (e == 0) e = 1;
	}
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return e;
}
// aero2_pub parses a PKCS#1 RSAPublicKey. NULL on failure.
static EVP_PKEY *aero2_pub(const unsigned char *der, long len) {
	const unsigned char *p = der;
	ERR_clear_error();
	EVP_PKEY *k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, len);
	if (k != NULL && p != der + len) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

// aero2_verify checks a PKCS#1 v1.5 signature of a SHA-256 digest: 1 when
// it is valid, anything else when not (or on error), with the error queue
// cleared either way.
static int aero2_verify(EVP_PKEY *k, const unsigned char *digest, size_t dlen, const unsigned char *sig, size_t siglen) {
	int ok = 0;
	ERR_clear_error();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	if (ctx != NULL
		&& EVP_PKEY_verify_init(ctx) > 0
		&& EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0
		&& EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0) {
		ok = EVP_PKEY_verify(ctx, sig, siglen, digest, dlen);
	}
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// Available reports whether the binary signs with OpenSSL.
const Available = true

// Version is the libcrypto in use, e.g. "OpenSSL 3.0.19 27 Jan 2026".
func Version() string { return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION)) }

// Signer signs with one RSA key held by libcrypto. It is safe for
// concurrent use.
type Signer struct {
	pub  rsa.PublicKey
	size int // modulus bytes: the signature's length
	k    *handle
}

// handle owns the EVP_PKEY. mu guards it against being freed while a Sign
// uses it: Sign holds mu shared, free exclusively.
type handle struct {
	mu   sync.RWMutex
	pkey *C.EVP_PKEY
}

// free releases the key once; later calls do nothing.
func (h *handle) free() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pkey != nil {
		C.EVP_PKEY_free(h.pkey)
		h.pkey = nil
	}
}

// New hands priv to libcrypto: one EVP_PKEY for the key's life, shared by
// every signature. It is freed by Close, or, for a Signer dropped without
// one (a key that retired from a key set other goroutines may still sign
// with), when the Signer is collected. Freeing is per key, never per
// signature: each signature's context is freed before Sign returns.
func New(priv *rsa.PrivateKey) (*Signer, error) {
	if priv == nil || priv.N == nil {
		return nil, errors.New("ossl: no RSA key")
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("ossl: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(priv)
	pkey := C.aero2_pkey((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	clear(der) // the private key's copy on the Go heap
	if pkey == nil {
		return nil, errors.New("ossl: libcrypto did not take the RSA key")
	}
	s := &Signer{pub: priv.PublicKey, size: priv.Size(), k: &handle{pkey: pkey}}
	runtime.AddCleanup(s, (*handle).free, s.k)
	return s, nil
}

// Public is the public key.
func (s *Signer) Public() crypto.PublicKey { return &s.pub }

// Sign makes an RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2) of a SHA-256
// digest: what RS256 is (RFC 7518 §3.3). Anything else — another hash, PSS
// options, a digest of the wrong size — is an error, not a signature of
// something the caller did not mean.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("ossl: only SHA-256 digests are signed (RS256)")
	}
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, errors.New("ossl: PSS is not supported, only PKCS#1 v1.5")
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("ossl: digest is %d bytes, want %d (SHA-256)", len(digest), sha256.Size)
	}
	sig := make([]byte, s.size)
	siglen := C.size_t(len(sig))
	h := s.k
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.pkey == nil {
		return nil, errors.New("ossl: signer closed")
	}
	e := C.aero2_sign(h.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &siglen)
	if e != 0 {
		return nil, fmt.Errorf("ossl: signing failed: %s", errString(e))
	}
	if int(siglen) != len(sig) {
		return nil, fmt.Errorf("ossl: signature is %d bytes, want %d", siglen, len(sig))
	}
	return sig, nil
}

// Close frees the key now; Sign fails afterwards. Signatures under way
// finish first.
func (s *Signer) Close() { s.k.free() }

// Verifier checks RS256 signatures with one public key held by libcrypto:
// parsed once per key, where crypto/rsa rebuilds its Montgomery modulus
// from the key on every verification (a third of its cost). It is safe for
// concurrent use.
type Verifier struct {
	pub  rsa.PublicKey
	size int
	k    *handle
}

// NewVerifier hands pub to libcrypto; freed by Close or when the Verifier
// is collected, as for New.
func NewVerifier(pub *rsa.PublicKey) (*Verifier, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.E < 3 {
		return nil, errors.New("ossl: no RSA public key")
	}
	der := x509.MarshalPKCS1PublicKey(pub)
	pkey := C.aero2_pub((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	if pkey == nil {
		return nil, errors.New("ossl: libcrypto did not take the RSA public key")
	}
	v := &Verifier{pub: *pub, size: pub.Size(), k: &handle{pkey: pkey}}
	runtime.AddCleanup(v, (*handle).free, v.k)
	return v, nil
}

// Verify checks an RSASSA-PKCS1-v1_5 signature of a SHA-256 digest (RFC
// 8017 §8.2.2): nil only for a valid one.
func (v *Verifier) Verify(digest, sig []byte) error {
	if len(digest) != sha256.Size {
		return fmt.Errorf("ossl: digest is %d bytes, want %d (SHA-256)", len(digest), sha256.Size)
	}
	if len(sig) != v.size {
		return ErrVerification // RFC 8017 §8.2.2 step 1: the length is the modulus's
	}
	h := v.k
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.pkey == nil {
		return errors.New("ossl: verifier closed")
	}
	if C.aero2_verify(h.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), C.size_t(len(sig))) != 1 {
		return ErrVerification
	}
	return nil
}

// Public is the public key.
func (v *Verifier) Public() *rsa.PublicKey { return &v.pub }

// Close frees the key now; Verify fails afterwards.
func (v *Verifier) Close() { v.k.free() }

func errString(e C.ulong) string {
	if e == 1 {
		return "no OpenSSL error queued"
	}
	var buf [256]C.char
	C.ERR_error_string_n(e, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}
