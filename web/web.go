// Package web holds Aero2's own pages (login, errors, account, consent, …)
// as embedded templates, its one stylesheet, and the headers every page is
// sent with. It imports nothing of Aero2's: callers pass plain data.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// StaticPrefix is where the static assets are served, on every host Aero2
// answers; the proxy reserves /.aero2/ so no route can shadow it.
const StaticPrefix = "/.aero2/static/"

// ContentSecurityPolicy for Aero2's pages: no scripts at all, styles and
// images from Aero2 itself, and no framing (clickjacking of the consent
// and sign-in pages). form-action is left out on purpose: Chrome applies it
// to the redirect after a form post, which would block the consent and
// logout forms from sending the browser back to a client's redirect URI.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; base-uri 'none'"

var (
	parseOnce sync.Once
	pages     map[string]*template.Template
	parseErr  error
)

// parse builds one template set per page, each with the layout.
func parse() {
	pages = map[string]*template.Template{}
	layout, err := templateFS.ReadFile("templates/layout.html")
	if err != nil {
		parseErr = err
		return
	}
	entries, _ := fs.Glob(templateFS, "templates/*.html")
	for _, name := range entries {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "layout" {
			continue
		}
		t := template.Must(template.New("layout").Parse(string(layout)))
		body, _ := templateFS.ReadFile(name)
		if _, err := t.Parse(string(body)); err != nil {
			parseErr = fmt.Errorf("template %s: %w", name, err)
			return
		}
		pages[page] = t
	}
}

// Page is what every template gets: the title and application name for
// the layout, and the page's own Data.
type Page struct {
	Title   string
	AppName string
	Data    any
}

// SetPageHeaders sets the security headers of an HTML page. Pages carry
// per-user content, so nothing may cache them.
func SetPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Render writes page name with status. The page is rendered into a buffer
// first, so a template failure becomes a clean 500 instead of half a page.
func Render(w http.ResponseWriter, status int, name string, p Page) {
	parseOnce.Do(parse)
	t, ok := pages[name]
	if parseErr != nil || !ok {
		slog.Error("web: no such page", "page", name, "err", parseErr)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		slog.Error("web: rendering failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	SetPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ErrorData is the error page's content. Message is shown to the user: it
// must say what happened and what to do, and never carry secrets.
type ErrorData struct {
	Message string
	Code    string // an OAuth error code or similar, when there is one
	Back    string // where "start again" leads; empty for no link
	// BackText words the Back link; "Start again" when empty.
	BackText string
}

// Error renders the error page.
func Error(w http.ResponseWriter, status int, appName, title string, d ErrorData) {
	Render(w, status, "error", Page{Title: title, AppName: appName, Data: d})
}

// Static serves the embedded assets under StaticPrefix.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(StaticPrefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// Check parses every template, so a broken one fails start-up (and the
// tests), not the first request for it.
func Check() error {
	parseOnce.Do(parse)
	return parseErr
}
