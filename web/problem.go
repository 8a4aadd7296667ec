package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Problem is one error answer, in both of its forms: a page for people and
// a small JSON object for programs. Code is what programs read, and it is
// given explicitly, never derived from Title: rewording a page must not
// change an API.
type Problem struct {
	Status int
	// Code is the API's error code ("not_found"): stable, snake_case.
	Code string
	// Title and Message are for people. Message says what happened and
	// what to do, and never carries secrets.
	Title   string
	Message string
	// RetryAfter, when set, is sent as Retry-After (RFC 9110 §10.2.3):
	// the client may try again after it (a store outage, a rate limit).
	RetryAfter time.Duration
	// Back is a link on the page, worded BackText ("Start again" when
	// empty); "" for none.
	Back     string
	BackText string
}

// Problems every part answers alike.
var (
	// NotFound: nothing is served at this address. The page offers the
	// host's start page as a way on.
	NotFound = Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not found",
		Message: "Nothing is served at this address.", Back: "/", BackText: "Go to the start page"}
	// StoreUnavailable: the store does not answer. Never the client's
	// fault; it may retry.
	StoreUnavailable = Problem{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Title: "Temporarily unavailable",
		Message: "Aero2 cannot reach its storage right now. Please try again in a few seconds.", RetryAfter: 5 * time.Second}
	// InternalError: something failed that is neither the client's fault
	// nor an outage; the details are in the log.
	InternalError = Problem{Status: http.StatusInternalServerError, Code: "server_error", Title: "Something went wrong",
		Message: "Aero2 could not complete the request."}
)

// With returns the problem with another message.
func (p Problem) With(msg string) Problem {
	p.Message = msg
	return p
}

// WithBack returns the problem with a link on its page.
func (p Problem) WithBack(href, text string) Problem {
	p.Back, p.BackText = href, text
	return p
}

func (p Problem) retryAfter(h http.Header) {
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
}

// WritePage answers with the error page; appName is shown on it ("" for
// none). The code is shown too, for people to quote.
func (p Problem) WritePage(w http.ResponseWriter, appName string) {
	p.retryAfter(w.Header())
	Error(w, p.Status, appName, p.Title, ErrorData{Message: p.Message, Code: p.Code, Back: p.Back, BackText: p.BackText})
}

// WriteJSON answers a script or an API client:
// {"error": Code, "error_description": Message}, the shape of OAuth 2.0
// error responses (RFC 6749 §5.2).
func (p Problem) WriteJSON(w http.ResponseWriter) {
	p.retryAfter(w.Header())
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(map[string]string{"error": p.Code, "error_description": p.Message})
}

// Write answers with the page when page is set, else with JSON.
func (p Problem) Write(w http.ResponseWriter, appName string, page bool) {
	if page {
		p.WritePage(w, appName)
		return
	}
	p.WriteJSON(w)
}

// SignedOut is the page every sign-out ends on, whichever way it went
// (the account page, RP-initiated logout without a return address, the
// proxy's sign-out): one page, one wording. again is where "Sign in
// again" leads; "" for no link.
func SignedOut(w http.ResponseWriter, appName, again string) {
	Render(w, http.StatusOK, "signed_out", Page{Title: "Signed out", AppName: appName, Data: struct{ Again string }{again}})
}
