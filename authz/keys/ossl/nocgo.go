//go:build openssl && !cgo

package ossl

// The openssl build tag asks for OpenSSL's signer, which is cgo. Without
// cgo the build would quietly fall back to crypto/rsa (none.go), and a
// deployment built for OpenSSL's speed would sign at a third of it, saying
// so only in `aero2 version`. Refuse the build instead: the undefined name
// below is the error message.
var _ = theOpensslBuildTagNeedsCgo_SetCGO_ENABLED1
