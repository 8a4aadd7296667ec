// Command quickstart runs Aero2 with examples/quickstart/aero2.yaml and,
// beside it, a demo app that echoes the headers it receives, so that one
// command shows all three parts: sign-in through the `dev` identity
// provider, the account page, and a legacy app behind the proxy receiving
// the user's identity in headers.
//
//	go run ./examples/quickstart
//
// then open http://localhost:8080/demo (the app behind the proxy) or
// http://localhost:8080/ (the account page). With --only-demo it serves
// the demo app alone, at --demo (the demo container of examples/compose).
package main

import (
	"context"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
)

func main() {
	cfgPath := flag.String("config", "examples/quickstart/aero2.yaml", "Aero2 configuration")
	demoAddr := flag.String("demo", "127.0.0.1:8081", "address of the demo app (the route's upstream)")
	onlyDemo := flag.Bool("only-demo", false, "serve only the demo app, at --demo (Aero2 runs elsewhere)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *demoAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart: demo app:", err)
		os.Exit(1)
	}
	demo := &http.Server{Handler: Echo(), ReadHeaderTimeout: 10 * time.Second}
	if *onlyDemo {
		fmt.Fprintf(os.Stderr, "quickstart: demo app listening on %s\n", ln.Addr())
		go func() {
			<-ctx.Done()
			demo.Close()
		}()
		if err := demo.Serve(ln); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "quickstart: demo app:", err)
			os.Exit(1)
		}
		return
	}
	go demo.Serve(ln)
	defer demo.Close()

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "\n  Aero2 quickstart\n  account page:          %s/\n  demo app behind proxy: %s/demo\n\n", cfg.Server.PublicURL, cfg.Server.PublicURL)
	if err := server.Run(ctx, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

var page = template.Must(template.New("echo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo app</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:50rem;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
td:first-child{white-space:nowrap;font-weight:600}code{word-break:break-all}.id{background:#eef6ff}</style></head>
<body><h1>Demo app</h1>
<p>This app has no authentication code. Aero2 signed you in and sent your identity in these headers:</p>
<table>{{range .Identity}}<tr class="id"><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{else}}<tr><td colspan="2">No identity headers: this page was not reached through Aero2.</td></tr>{{end}}</table>
<h2>Every request header</h2>
<table>{{range .All}}<tr><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{end}}</table>
<p><a href="/.aero2/sign_out">Sign out</a></p>
</body></html>`))

type header struct{ Name, Value string }

// Echo is the demo app: it shows the identity headers and every other
// header it receives.
func Echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id, all []header
		for name, vals := range r.Header {
			h := header{name, strings.Join(vals, ", ")}
			all = append(all, h)
			lower := strings.ToLower(name)
			if strings.HasPrefix(lower, "x-forwarded-") && lower != "x-forwarded-for" && lower != "x-forwarded-proto" && lower != "x-forwarded-host" ||
				strings.HasPrefix(lower, "x-auth-request-") {
				id = append(id, h)
			}
		}
		sort.Slice(id, func(i, j int) bool { return id[i].Name < id[j].Name })
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		page.Execute(w, struct{ Identity, All []header }{id, all})
	})
}
