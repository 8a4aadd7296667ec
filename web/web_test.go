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
