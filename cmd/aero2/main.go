// Command aero2 is the Aero2 server: an OpenID Connect provider, a
// federation broker and an identity-aware proxy in one binary.
//
//	aero2 serve --config aero2.yaml   run the server
//	aero2 check --config aero2.yaml   validate a configuration
//	aero2 keys rotate --config aero2.yaml [--app NAME]
//	                                  rotate token signing keys
//	aero2 version                     print the version
//
// --config defaults to $AERO2_CONFIG.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Aero2: OpenID Connect provider, federation broker and identity-aware proxy.

Usage:
  aero2 serve   [--config FILE]   run the server
  aero2 check   [--config FILE]   validate a configuration and exit
  aero2 keys rotate [--config FILE] [--app NAME]
                                  rotate the token signing keys (all
                                  applications, or NAME) in the shared store
  aero2 version                   print the version

--config defaults to $AERO2_CONFIG.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "aero2", versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve", "check":
	case "keys":
		if len(rest) == 0 || rest[0] != "rotate" {
			fmt.Fprintf(stderr, "aero2: usage: aero2 keys rotate [--config FILE] [--app NAME]\n")
			return 2
		}
		cmd, rest = "keys rotate", rest[1:]
	default:
		fmt.Fprintf(stderr, "aero2: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet("aero2 "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("AERO2_CONFIG"), "configuration file (default $AERO2_CONFIG)")
	var app *string
	if cmd == "keys rotate" {
		app = fs.String("app", "", "rotate only this application's keys")
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "aero2: no configuration: pass --config FILE or set AERO2_CONFIG")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printErr(stderr, err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "keys rotate":
		if err := server.RotateKeys(ctx, cfg, *app, stdout); err != nil {
			printErr(stderr, err)
			return 1
		}
		return 0
	case "check":
		if err := server.Check(ctx, cfg, nil); err != nil {
			printErr(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK (%d application(s))\n", *path, len(cfg.Apps()))
		return 0
	default: // serve
		log := newLogger(cfg.Log, stderr)
		if err := server.Run(ctx, cfg, log); err != nil {
			printErr(stderr, err)
			return 1
		}
		return 0
	}
}

// printErr prints every configuration problem on a line of its own, and
// any other error on one line: never a stack trace.
func printErr(w io.Writer, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	fmt.Fprintln(w, "aero2:", err)
}

// newLogger logs text on a terminal and JSON otherwise (format auto).
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}
