package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/store"
)

// The proxy checks DPoP (RFC 9449 §7) for the APIs behind it: a token
// bound to a key (cnf.jkt) passes only as "Authorization: DPoP" with a
// proof, signed by that key, of this very request — its method, its URL as
// the client addressed it, and a hash of the token (ath) — used once. So
// an upstream gets sender-constrained tokens without a line of code: a
// bound token stolen from a log or a browser is useless without the key.

// dpopReplayPrefix keys the proofs' jti in the application's store:
// replicas refuse each other's replays.
const dpopReplayPrefix = "proxy-dpop-jti:"

// errDPoP is a refused proof or presentation; code is the challenge's
// error (invalid_token or invalid_dpop_proof, RFC 9449 §7.1).
type errDPoP struct {
	code string
	err  error
}

func (e *errDPoP) Error() string { return e.code + ": " + e.err.Error() }
func (e *errDPoP) Unwrap() error { return e.err }

func newDPoPVerifier(records store.AppRecords, now func() time.Time) *dpop.Verifier {
	return &dpop.Verifier{
		Now: now,
		Replay: func(ctx context.Context, key string, ttl time.Duration) error {
			err := records.Create(ctx, dpopReplayPrefix+key, []byte{1}, ttl)
			if errors.Is(err, store.ErrExists) {
				return dpop.ErrReplay
			}
			return err
		},
	}
}

// checkDPoP checks how a verified token was presented: a token with
// cnf.jkt only with the DPoP scheme and a good proof by its key; the DPoP
// scheme only for such a token (RFC 9449 §7.2: a bound token as Bearer
// is refused, or stealing one would be enough). A nil error admits; an
// *errDPoP refuses; any other error is a failure to ask the store.
func (rt *Route) checkDPoP(r *http.Request, scheme, token string, id *Identity) error {
	cnf, _ := id.Claims["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	if jkt == "" && scheme != dpop.Scheme {
		return nil
	}
	if jkt == "" {
		return &errDPoP{"invalid_token", errors.New("the DPoP scheme with a token that is not DPoP-bound")}
	}
	if scheme != dpop.Scheme {
		return &errDPoP{"invalid_token", errors.New("a DPoP-bound token presented as Bearer")}
	}
	values := r.Header.Values(dpop.Header)
	if len(values) == 0 {
		return &errDPoP{"invalid_dpop_proof", errors.New("no DPoP proof")}
	}
	// The URL as the client addressed it: the application's scheme (the
	// client spoke https to whatever terminates TLS in front), the Host it
	// sent — the one the route was chosen by — and the path as sent.
	target := rt.app.scheme + "://" + r.Host + r.URL.EscapedPath()
	proof, err := rt.app.dpop.Verify(r.Context(), values, dpop.Request{Method: r.Method, URL: target, AccessToken: token})
	if err != nil {
		if errors.Is(err, dpop.ErrInvalidProof) || errors.Is(err, dpop.ErrUseNonce) {
			return &errDPoP{"invalid_dpop_proof", err}
		}
		return fmt.Errorf("checking a DPoP proof: %w", err)
	}
	if proof.JKT != jkt {
		return &errDPoP{"invalid_dpop_proof", errors.New("the proof is not signed by the key the token is bound to")}
	}
	return nil
}

// dpopChallenge is the WWW-Authenticate of a refused DPoP request (RFC
// 9449 §7.1): the error, and the algorithms a proof may use.
func dpopChallenge(code string) string {
	return `DPoP realm="aero2", error="` + code + `", algs="` + strings.Join(dpop.AlgNames(), " ") + `"`
}
