package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aero2/aero2/web"
)

// TestProblemCodesAreNotTitles: what a JSON client reads is each
// problem's explicit code. Rewording a title (for people) leaves the code
// (the API) as it was, and every code keeps the value it had when codes
// were derived from titles.
func TestProblemCodesAreNotTitles(t *testing.T) {
	h := &Handler{}
	for want, p := range map[string]web.Problem{
		"bad_request":             errBadRequest,
		"sign-in_refused":         errSignInRefused,
		"sign-in_unavailable":     errSignInUnavailable,
		"sign-in_failed":          errSignInFailed,
		"method_not_allowed":      errMethodNotAllowed,
		"request_refused":         errFormRefused,
		"application_unavailable": errUpstreamDown,
		"temporarily_unavailable": errCannotCheck,
		"access_denied":           errAccessDenied,
		"not_found":               web.NotFound,
	} {
		for _, title := range []string{p.Title, "Something else entirely", ""} {
			reworded := p
			reworded.Title = title
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.Header.Set("Accept", "application/json")
			w := httptest.NewRecorder()
			h.problem(w, r, reworded)
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: not JSON: %q", want, w.Body)
			}
			if body["error"] != want || w.Code != p.Status {
				t.Errorf("title %q: %d %q, want %d %q", title, w.Code, body["error"], p.Status, want)
			}
			// A browser gets the page, with the title and the same code.
			r.Header.Set("Accept", "text/html")
			w = httptest.NewRecorder()
			h.problem(w, r, reworded)
			if w.Code != p.Status || !strings.Contains(w.Body.String(), "<code>"+want+"</code>") || !strings.Contains(w.Body.String(), "<h1>"+title+"</h1>") {
				t.Errorf("title %q: page %d without its title and code:\n%s", title, w.Code, w.Body)
			}
		}
	}
	// Retry-After comes with the problem, in both forms.
	for _, accept := range []string{"application/json", "text/html"} {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.problem(w, r, errCannotCheck)
		if w.Header().Get("Retry-After") != "5" {
			t.Errorf("%s: Retry-After %q", accept, w.Header().Get("Retry-After"))
		}
	}
}
