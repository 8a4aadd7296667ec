package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTemplatesParse(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"login", "error", "account", "dev_login"} {
		if pages[p] == nil {
			t.Errorf("page %q missing", p)
		}
	}
}

func TestRenderEscapesAndSetsHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	Error(w, 400, "shop", "Sign-in failed", ErrorData{Message: `<script>alert(1)</script>`, Code: "invalid_request"})
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 {
		t.Errorf("status %d", res.StatusCode)
	}
	if strings.Contains(string(body), "<script>") || !strings.Contains(string(body), "&lt;script&gt;") {
		t.Error("message not HTML-escaped")
	}
	h := res.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestRenderUnknownPageIs500NotPanic(t *testing.T) {
	w := httptest.NewRecorder()
	Render(w, 200, "no-such-page", Page{})
	if w.Code != 500 {
		t.Errorf("status %d", w.Code)
	}
}

func TestStatic(t *testing.T) {
	w := httptest.NewRecorder()
	Static().ServeHTTP(w, httptest.NewRequest("GET", StaticPrefix+"aero2.css", nil))
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("css: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	w = httptest.NewRecorder()
	Static().ServeHTTP(w, httptest.NewRequest("GET", StaticPrefix+"../templates/login.html", nil))
	if w.Code == 200 {
		t.Error("templates reachable through the static handler")
	}
}

func TestProblemAnswersBothWays(t *testing.T) {
	p := StoreUnavailable.With("Try later.")
	w := httptest.NewRecorder()
	p.WriteJSON(w)
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" || w.Header().Get("Cache-Control") != "no-store" ||
		strings.TrimSpace(w.Body.String()) != `{"error":"temporarily_unavailable","error_description":"Try later."}` {
		t.Errorf("JSON: %d %v %q", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	p.WritePage(w, "shop")
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" || !strings.Contains(w.Body.String(), "<h1>Temporarily unavailable</h1>") || !strings.Contains(w.Body.String(), "Try later.") {
		t.Errorf("page: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	// The 404 page offers a way on; a Back link without words is "Start
	// again".
	w = httptest.NewRecorder()
	NotFound.WritePage(w, "")
	if w.Code != 404 || !strings.Contains(w.Body.String(), `<a href="/">Go to the start page</a>`) {
		t.Errorf("404 page without a way on:\n%s", w.Body)
	}
	w = httptest.NewRecorder()
	InternalError.WithBack("/login", "").WritePage(w, "")
	if !strings.Contains(w.Body.String(), `<a href="/login">Start again</a>`) || w.Header().Get("Retry-After") != "" {
		t.Errorf("500 page:\n%s", w.Body)
	}
}

func TestSignedOutPage(t *testing.T) {
	w := httptest.NewRecorder()
	SignedOut(w, "shop", "/login?return_to=%2Faccount")
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "<h1>Signed out</h1>") || !strings.Contains(body, "You are signed out.") || !strings.Contains(body, `<a href="/login?return_to=%2Faccount">Sign in again</a>`) {
		t.Errorf("signed-out page:\n%s", body)
	}
}
