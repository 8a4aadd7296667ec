package proxy

import (
	"net/http"
	"strings"

	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/safeurl"
)

// allow spends one request of limit for each key of app, and answers 429
// (a page for browsers, JSON otherwise) when one is over. It has answered
// when it returns false.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, app string, name ratelimit.Name, keys ...ratelimit.Key) bool {
	d := h.limits.Allow(r.Context(), app, name, keys...)
	if !d.Allowed {
		refuse(w, r, d)
	}
	return d.Allowed
}

func refuse(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
	if wantsHTML(r) {
		ratelimit.WritePage(w, "", d)
		return
	}
	ratelimit.WriteJSON(w, d)
}

// returnPath caps the address a browser comes back to after signing in,
// which the sign-in state keeps: anyone can make the proxy keep one, so it
// must be small. A longer one loses its query (the page, without what was
// asked of it), and "/" stands for a path that is too long even alone.
func returnPath(target string) string {
	if len(target) <= safeurl.MaxLen {
		return target
	}
	if path, _, _ := strings.Cut(target, "?"); len(path) <= safeurl.MaxLen {
		return path
	}
	return "/"
}
