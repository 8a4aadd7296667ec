package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/store"
)

// DPoP (RFC 9449): a client that sends a proof with its token request gets
// tokens bound to its key — the access token names the key's thumbprint in
// cnf.jkt, and a public client's refresh token can be used only with the
// same key — so a stolen token is useless without the private key.

// dpopReplayPrefix keys the proofs' jti in the store.
const dpopReplayPrefix = "dpop-jti:"

// newDPoP builds the proof verifier for the provider: jti remembered in
// the store (so replicas refuse each other's replays), nonces when the
// application requires them.
func (p *Provider) newDPoP() {
	p.dpopNonces = &dpop.Nonces{Key: derive(p.opts.TokenSecret, "aero2 dpop nonces"), Now: p.opts.Now}
	p.dpop = &dpop.Verifier{
		Now: p.opts.Now,
		Replay: func(ctx context.Context, key string, ttl time.Duration) error {
			err := p.st.Create(ctx, dpopReplayPrefix+key, []byte{1}, ttl)
			if errors.Is(err, store.ErrExists) {
				return dpop.ErrReplay
			}
			return err
		},
	}
	if p.opts.Config.RequireDPoPNonce {
		p.dpop.Nonces = p.dpopNonces
	}
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// proof checks the request's DPoP proof for the endpoint at path; nil
// without a DPoP header. token, at a resource, is the access token the
// proof must hash (ath).
func (p *Provider) proof(r *http.Request, path, token string) (*dpop.Proof, error) {
	values := r.Header.Values(dpop.Header)
	if len(values) == 0 {
		return nil, nil
	}
	return p.dpop.Verify(r.Context(), values, dpop.Request{Method: r.Method, URL: p.url(path), AccessToken: token})
}

// giveNonce sends the nonce for the client's next proof (RFC 9449 §8),
// when the application requires them.
func (p *Provider) giveNonce(w http.ResponseWriter) {
	if p.dpop.Nonces != nil {
		w.Header().Set(dpop.NonceHeader, p.dpopNonces.Current())
	}
}

// dpopTokenError answers a refused proof at the token endpoint (RFC 9449
// §5, §8): 400 invalid_dpop_proof, or use_dpop_nonce with a nonce.
func (p *Provider) dpopTokenError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		p.giveNonce(w)
		writeJSONError(w, http.StatusBadRequest, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof.")
	case errors.Is(err, dpop.ErrInvalidProof):
		p.log.Info("token endpoint: DPoP proof refused", "err", err)
		writeJSONError(w, http.StatusBadRequest, "invalid_dpop_proof", "The DPoP proof is invalid.")
	case isUnavailable(err):
		p.unavailable(w, r, err)
	default:
		p.log.Error("token endpoint: DPoP", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "")
	}
}

// jktKey carries the thumbprint of the token request's DPoP key to the
// token strategy, which binds the tokens it issues to it.
type jktKey struct{}

func withJKT(ctx context.Context, jkt string) context.Context {
	return context.WithValue(ctx, jktKey{}, jkt)
}

func jktFrom(ctx context.Context) string {
	s, _ := ctx.Value(jktKey{}).(string)
	return s
}
