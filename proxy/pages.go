package proxy

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aero2/aero2/web"
)

// wantsHTML reports whether the client reads pages (a browser) rather
// than JSON.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return r.Header.Get("X-Requested-With") == "" && (accept == "" || strings.Contains(accept, "text/html") || !strings.Contains(accept, "application/json"))
}

// page renders an error page. It never names the upstream.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	if !wantsHTML(r) {
		h.apiError(w, status, strings.ToLower(strings.ReplaceAll(title, " ", "_")), msg)
		return
	}
	web.Error(w, status, "", title, web.ErrorData{Message: msg})
}

// apiError answers a script or API client with a small JSON body.
func (h *Handler) apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}

// forbidden is the 403 for a signed-in user the policy does not admit: a
// page (when page is set) says who they are signed in as and offers to
// sign out (to come back as someone else); neither it nor the JSON says
// anything about what is behind the route.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, id *Identity, page bool) {
	if !page {
		h.apiError(w, http.StatusForbidden, "access_denied", "You are signed in but may not use this address.")
		return
	}
	web.Render(w, http.StatusForbidden, "forbidden", web.Page{Title: "Access denied", Data: struct {
		User       string
		SignOutURL string
		CSRF       string
	}{id.Display(), signOutPath, h.csrfToken(r)}})
}
