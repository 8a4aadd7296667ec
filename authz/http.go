package authz

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// maxBodyBytes bounds the bodies of the API endpoints: an OAuth request is
// a few hundred bytes, a consent or logout form a few kilobytes.
const maxBodyBytes = 64 << 10

// api wraps a back-channel endpoint (token, userinfo, introspection,
// revocation): CORS for the application's clients' origins, allowed
// methods, and a form body that is urlencoded (RFC 6749 §3.2), bounded,
// well-formed and without repeated parameters (RFC 6749 §3.1, §3.2).
func (p *Provider) api(methods string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		preflight := p.cors(w, r, methods)
		if preflight {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !allowed(methods, r.Method) {
			w.Header().Set("Allow", methods)
			writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
			return
		}
		if r.Method == http.MethodPost {
			if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
				mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
				if err != nil || mt != "application/x-www-form-urlencoded" {
					writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body must be application/x-www-form-urlencoded.")
					return
				}
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			if err := r.ParseForm(); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeJSONError(w, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
					return
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					// server.read_body_timeout passed (a slow client).
					writeJSONError(w, http.StatusRequestTimeout, "invalid_request", "The request body did not arrive in time.")
					return
				}
				writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
				return
			}
			for k, v := range r.PostForm {
				if len(v) > 1 {
					writeJSONError(w, http.StatusBadRequest, "invalid_request", "Parameter "+k+" is repeated.")
					return
				}
			}
		}
		h(w, r)
	})
}

// cors allows the application's clients' origins (those of their redirect
// URIs) to call the back-channel endpoints from a browser: SPAs are public
// clients. It reports whether the request was a preflight. No credentials
// (cookies) are ever allowed cross-origin.
// allowed reports whether method is one of methods ("GET, POST"), whole:
// a method "POS" or "ET" is not a part of "GET, POST".
func allowed(methods, method string) bool {
	for m := range strings.SplitSeq(methods, ", ") {
		if m == method {
			return true
		}
	}
	return false
}

func (p *Provider) cors(w http.ResponseWriter, r *http.Request, methods string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !p.corsOrigins[strings.ToLower(origin)] {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	// A browser client reads the nonce it must put in its next proof
	// (RFC 9449 §8).
	h.Set("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
		h.Set("Access-Control-Max-Age", "600")
		return true
	}
	return false
}

// corsOrigins are the origins of the clients' redirect URIs.
func corsOrigins(clients *clientRegistry) map[string]bool {
	out := map[string]bool{}
	for _, c := range clients.byID {
		for _, raw := range c.RedirectURIs {
			if u, err := url.Parse(raw); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
				out[strings.ToLower(u.Scheme+"://"+u.Host)] = true
			}
		}
	}
	return out
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeJSONError writes an OAuth error response (RFC 6749 §5.2).
func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	noStore(w)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(oauthError{code, desc})
}

func writeJSON(w http.ResponseWriter, v any) {
	noStore(w)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// noStore: token material must not be cached (RFC 6749 §5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// unavailable answers a store outage: 503, retry later. Never the
// client's fault, and never a reason to say a token is inactive.
func (p *Provider) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Warn("store unavailable", "path", r.URL.Path, "err", err)
	noStore(w)
	web.StoreUnavailable.With("The server cannot reach its storage; try again shortly.").WriteJSON(w)
}

func isUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }

// page renders an error page for the browser-facing endpoints. It never
// redirects: it is what the user sees when the client's redirect_uri
// cannot be trusted.
func (p *Provider) page(w http.ResponseWriter, status int, title, msg, code string) {
	web.Error(w, status, p.opts.DisplayName, title, web.ErrorData{Message: msg, Code: code})
}

// pageFailure answers a store error on a browser-facing endpoint.
func (p *Provider) pageFailure(w http.ResponseWriter, r *http.Request, err error) {
	if isUnavailable(err) {
		p.log.Warn("store unavailable", "path", r.URL.Path, "err", err)
		web.StoreUnavailable.WritePage(w, p.opts.DisplayName)
		return
	}
	p.log.Error("request failed", "path", r.URL.Path, "err", err)
	web.InternalError.WritePage(w, p.opts.DisplayName)
}

func writeBody(w http.ResponseWriter, v any) {
	json.NewEncoder(w).Encode(v)
}
