package proxy

import (
	"net/http"
	"strings"
	"time"

	"github.com/aero2/aero2/web"
)

// The proxy's error answers. Each Code is what JSON clients read, fixed
// here: the titles are for people and may be reworded without changing
// the API (the codes keep the values they had when they were derived
// from the titles). Where the status varies, the caller sets it.
var (
	errBadRequest        = web.Problem{Status: http.StatusBadRequest, Code: "bad_request", Title: "Bad request", Message: "This address is not valid."}
	errSignInRefused     = web.Problem{Status: http.StatusBadRequest, Code: "sign-in_refused", Title: "Sign-in refused", Message: "The page asked to return to an address this site does not allow."}
	errSignInUnavailable = web.Problem{Status: http.StatusBadGateway, Code: "sign-in_unavailable", Title: "Sign-in unavailable", Message: "Aero2 cannot reach its sign-in service right now. Please try again shortly."}
	errSignInFailed      = web.Problem{Status: http.StatusBadRequest, Code: "sign-in_failed", Title: "Sign-in failed"}
	errMethodNotAllowed  = web.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Title: "Method not allowed", Message: "This address does not answer that kind of request."}
	errFormRefused       = web.Problem{Status: http.StatusForbidden, Code: "request_refused", Title: "Request refused", Message: "This form has expired or did not come from this site. Reload the page and try again."}
	errUpstreamDown      = web.Problem{Status: http.StatusBadGateway, Code: "application_unavailable", Title: "Application unavailable", Message: "The application at this address is not answering. Please try again shortly."}
	errCannotCheck       = web.Problem{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Title: "Temporarily unavailable", Message: "Aero2 cannot check your session right now. Please try again in a few seconds.", RetryAfter: 5 * time.Second}
	errAccessDenied      = web.Problem{Status: http.StatusForbidden, Code: "access_denied", Title: "Access denied", Message: "You are signed in but may not use this address."}
)

// withStatus is p answered with another status.
func withStatus(p web.Problem, status int) web.Problem {
	p.Status = status
	return p
}

// wantsHTML reports whether the client reads pages (a browser) rather
// than JSON.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return r.Header.Get("X-Requested-With") == "" && (accept == "" || strings.Contains(accept, "text/html") || !strings.Contains(accept, "application/json"))
}

// problem answers an error: a page for a browser, JSON for a script. It
// never names the upstream.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, p web.Problem) {
	p.Write(w, "", wantsHTML(r))
}

// apiError answers a script or API client with a small JSON body.
func (h *Handler) apiError(w http.ResponseWriter, status int, code, msg string) {
	web.Problem{Status: status, Code: code, Message: msg}.WriteJSON(w)
}

// forbidden is the 403 for a signed-in user the policy does not admit: a
// page (when page is set) says who they are signed in as and offers to
// sign out (to come back as someone else); neither it nor the JSON says
// anything about what is behind the route.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, id *Identity, page bool) {
	if !page {
		errAccessDenied.WriteJSON(w)
		return
	}
	web.Render(w, http.StatusForbidden, "forbidden", web.Page{Title: "Access denied", Data: struct {
		User       string
		SignOutURL string
		CSRF       string
	}{id.Display(), signOutPath, h.csrfToken(r)}})
}
