// Command aero2 is the Aero2 server: an OpenID Connect provider, a
// federation broker and an identity-aware proxy in one binary.
//
//	aero2 serve --config aero2.yaml   run the server
//	aero2 check --config aero2.yaml   validate a configuration
//	aero2 migrate --config aero2.yaml apply PostgreSQL schema migrations
//	aero2 users list|show|disable|enable|delete
//	aero2 sessions list|revoke
//	aero2 consents list|revoke
//	aero2 clients list
//	aero2 keys list|rotate            administer what the servers share
//	aero2 store copy --from a.yaml --to b.yaml
//	                                  copy users, identities, consents, keys
//	aero2 healthcheck [--config FILE | --url URL]
//	                                  exit 0 when /readyz answers 200
//	aero2 secret                      print a new random secret
//	aero2 version                     print the version
//	aero2 help [COMMAND]              explain a command
//
// --config defaults to $AERO2_CONFIG. The admin commands (admin.go) print
// tables for people and JSON with --json.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/server"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one of aero2's commands. run gets the flags already parsed.
type command struct {
	name    string // "keys rotate" for a sub-command
	summary string // one line, for the general usage
	args    string // what follows the name in the usage line
	help    string // what it does, for `aero2 help NAME`
	config  bool   // takes --config
	flags   func(fs *flag.FlagSet) func() flagValues
	run     func(ctx context.Context, c *invocation) int
	// minArgs and maxArgs bound the positional arguments (a user ID).
	minArgs, maxArgs int
	// action names an admin command that changes something, as its
	// admin.action audit events name it (users.disable); "" for the
	// read-only ones (adminaudit.go).
	action string
}

// flagValues are a command's own flags, once parsed.
type flagValues struct {
	app, user, client string
	json              bool
	from, to          string
	// healthcheck's: --url, --config (optional there) and --timeout.
	healthURL, healthConfig string
	timeout                 time.Duration
}

// invocation is what a command runs with.
type invocation struct {
	name           string // the command's name
	path           string // --config
	flags          flagValues
	args           []string // positional
	stdout, stderr io.Writer
	action         string // the command's action
	// audit is the audit log (log.audit) and event the admin.action
	// event of a command that changes something (adminaudit.go); nil
	// otherwise.
	audit audit.Logger
	event *audit.Event
}

var commands = []*command{
	{
		name: "serve", summary: "run the server", args: "[--config FILE]", config: true,
		help: `Runs Aero2: loads and checks the configuration, opens the store (and
fails at once if Redis cannot be reached), then serves until SIGINT or
SIGTERM, when in-flight requests get server.shutdown_timeout to finish.
On PostgreSQL it refuses a schema older than it needs (run aero2 migrate,
or set store.postgres.migrate_on_start).
Logs go to standard error (log.format: text on a terminal, else JSON).`,
		run: runServe,
	},
	{
		name: "check", summary: "validate a configuration and exit", args: "[--config FILE]", config: true,
		help: `Checks the configuration as serve would load it, without listening or
touching the network or the store: every key and value, the files it
names (TLS certificates and keys, CA bundles), and each identity
provider's own settings. Prints every problem at once, one per line, as
FILE:LINE:COL: KEY: what is wrong, and exits 1; or prints notices (valid,
but worth knowing, such as a route that only answers forward-auth) and
"OK", and exits 0.`,
		run: runCheck,
	},
	{
		name: "migrate", summary: "apply the PostgreSQL schema migrations", args: "[--config FILE]", config: true,
		help: `Brings the schema of the PostgreSQL database that store.postgres names
(store.type postgres or combined) to the version this aero2 needs,
applying each missing migration once, in order, in a transaction of its
own, and prints what it applied. Migrations only move forward. Replicas
may run it at once: they take turns on a lock. serve refuses to start on
an older schema unless store.postgres.migrate_on_start is true. Other
stores have no schema: it says so and exits 0.`,
		run: runMigrate,
	},
	{
		name: "store copy", summary: "copy users, identities, consents and keys between stores", args: "--from FILE --to FILE",
		help: `Copies every application's data of record — users with their linked
identities, consents and token signing keys — from the store that the
--from configuration names to the one --to names: from Redis to
PostgreSQL, say, when moving an existing deployment. Migrate the
destination first (aero2 migrate). Both configurations must have the same
secrets.storage_key (the signing keys are sealed with it). It is
idempotent: what the destination has already is left as it is and
counted, so an interrupted copy can be run again. Sessions, tokens and
other short-lived state are not copied: users sign in again.`,
		flags: func(fs *flag.FlagSet) func() flagValues {
			from := fs.String("from", "", "configuration of the store to copy from")
			to := fs.String("to", "", "configuration of the store to copy into")
			return func() flagValues { return flagValues{from: *from, to: *to} }
		},
		run: runStoreCopy,
	},
	{
		name: "healthcheck", summary: "exit 0 when the server's /readyz answers 200", args: "[--config FILE | --url URL] [--timeout D]",
		help: `Asks the running server's /readyz (ready: its store answers) and exits
0 when it answers 200, or 1 with one line saying why (the status and
body it answered, or why nothing answered). The address is the
configuration's server.listen, on loopback when it listens on every
address, over https with server.tls.cert_file as the trusted
certificate when TLS is on; --url names another. It is the container
image's HEALTHCHECK: the image has no shell, curl or wget.`,
		flags: func(fs *flag.FlagSet) func() flagValues {
			cfg := fs.String("config", os.Getenv("AERO2_CONFIG"), "configuration file (default $AERO2_CONFIG); not needed with --url")
			u := fs.String("url", "", "the /readyz URL to ask instead of the configuration's listener")
			timeout := fs.Duration("timeout", defaultHealthTimeout, "how long to wait for the answer")
			return func() flagValues { return flagValues{healthURL: *u, healthConfig: *cfg, timeout: *timeout} }
		},
		run: runHealthcheck,
	},
	{
		name: "secret", summary: "print a new random secret", args: "",
		help: `Prints a new random secret: 32 random bytes, base64url-encoded (43
characters). Use one for each of secrets.cookie_keys, secrets.storage_key
and every client secret, given through the environment:

  export AERO2_STORAGE_KEY=$(aero2 secret)`,
		run: runSecret,
	},
	{
		name: "version", summary: "print the version", args: "",
		help: `Prints the version, the commit it was built from (when known) and the
Go version.`,
		run: func(_ context.Context, c *invocation) int {
			fmt.Fprintln(c.stdout, "aero2", versionString())
			return 0
		},
	},
}

func init() { commands = append(commands, adminCommands...) }

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage() string {
	var b strings.Builder
	b.WriteString("Aero2: OpenID Connect provider, federation broker and identity-aware proxy.\n\nUsage: aero2 COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-17s %s\n", c.name, c.summary)
	}
	b.WriteString("  help              explain a command: aero2 help COMMAND (or aero2 COMMAND -h)\n\n--config defaults to $AERO2_CONFIG.\n")
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "--version", "-v":
		name = "version"
	case "help", "--help", "-h":
		return runHelp(rest, stdout, stderr)
	}
	if isGroup(name) {
		if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
			fmt.Fprint(stdout, groupHelp(name))
			return 0
		}
		if len(rest) == 0 || lookup(name+" "+rest[0]) == nil {
			if len(rest) > 0 {
				fmt.Fprintf(stderr, "aero2 %s: unknown command %q\n\n", name, rest[0])
			}
			fmt.Fprint(stderr, groupHelp(name))
			return 2
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "aero2: unknown command %q\n\n%s", name, usage())
		return 2
	}
	fs := newFlagSet(cmd, stderr)
	var path *string
	if cmd.config {
		path = fs.String("config", os.Getenv("AERO2_CONFIG"), "configuration file (default $AERO2_CONFIG)")
	}
	values := func() flagValues { return flagValues{} }
	if cmd.flags != nil {
		values = cmd.flags(fs)
	}
	// Flags may come before and after the positional arguments
	// (`aero2 users show ID --json`): the flag package stops at the
	// first non-flag, so parse again after each.
	var pos []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, commandHelp(cmd))
				return 0
			}
			fmt.Fprint(stderr, "\n"+commandHelp(cmd))
			return 2
		}
		left := fs.Args()
		if consumed := rest[:len(rest)-len(left)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			// After "--" everything is an argument: a session ID may
			// begin with "-" (base64url).
			pos = append(pos, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		pos, rest = append(pos, left[0]), left[1:]
	}
	if len(pos) > cmd.maxArgs {
		fmt.Fprintf(stderr, "aero2 %s: unexpected argument %q\n\n%s", cmd.name, pos[cmd.maxArgs], commandHelp(cmd))
		return 2
	}
	if len(pos) < cmd.minArgs {
		fmt.Fprintf(stderr, "aero2 %s: missing argument\n\n%s", cmd.name, commandHelp(cmd))
		return 2
	}
	inv := &invocation{name: cmd.name, flags: values(), args: pos, stdout: stdout, stderr: stderr, action: cmd.action}
	if cmd.config {
		if *path == "" {
			fmt.Fprintf(stderr, "aero2 %s: no configuration: pass --config FILE or set AERO2_CONFIG\n", cmd.name)
			return 2
		}
		inv.path = *path
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd.run(ctx, inv)
}

// newFlagSet is a command's flags; a wrong flag prints the command's own
// help (run does), not the general usage.
func newFlagSet(cmd *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("aero2 "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// run answers -h on standard output and a wrong flag with the
	// command's help on standard error, after the flag package's line.
	fs.Usage = func() {}
	return fs
}

// runHelp answers `aero2 help [COMMAND]`.
func runHelp(args []string, stdout, stderr io.Writer) int {
	name := strings.Join(args, " ")
	switch name {
	case "":
		fmt.Fprint(stdout, usage())
		return 0
	case "help":
		fmt.Fprint(stdout, "Usage: aero2 help [COMMAND]\n\nExplains COMMAND, or lists the commands. aero2 COMMAND -h says the same.\n")
		return 0
	}
	if isGroup(name) {
		fmt.Fprint(stdout, groupHelp(name))
		return 0
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "aero2 help: unknown command %q\n\n%s", name, usage())
		return 2
	}
	fmt.Fprint(stdout, commandHelp(cmd))
	return 0
}

// isGroup reports whether name is a group of sub-commands ("users").
func isGroup(name string) bool {
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.name, " "); ok && g == name {
			return true
		}
	}
	return false
}

// groupHelp lists a group's sub-commands.
func groupHelp(group string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: aero2 %s COMMAND [flags]\n\nCommands:\n", group)
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			fmt.Fprintf(&b, "  %-12s %s\n", sub, c.summary)
		}
	}
	fmt.Fprintf(&b, "\nSee aero2 help %s COMMAND.\n", group)
	return b.String()
}

// commandHelp is a command's usage line, what it does, and its flags.
func commandHelp(cmd *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n", strings.TrimSpace("aero2 "+cmd.name+" "+cmd.args), cmd.help)
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	if cmd.config {
		fs.String("config", "", "configuration file (default $AERO2_CONFIG)")
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
	}
	return b.String()
}

func loadConfig(c *invocation) (*config.Config, bool) {
	cfg, err := config.Load(c.path)
	if err != nil {
		printErr(c.stderr, err)
		return nil, false
	}
	return cfg, true
}

func runServe(ctx context.Context, c *invocation) int {
	cfg, ok := loadConfig(c)
	if !ok {
		return 1
	}
	log := logging.New(cfg.Log, c.stderr)
	if err := server.Run(ctx, cfg, log); err != nil {
		printErr(c.stderr, err)
		return 1
	}
	return 0
}

func runCheck(ctx context.Context, c *invocation) int {
	cfg, ok := loadConfig(c)
	if !ok {
		return 1
	}
	if err := server.Check(ctx, cfg, nil); err != nil {
		printErr(c.stderr, err)
		return 1
	}
	for _, n := range cfg.Notices {
		fmt.Fprintln(c.stdout, n.Error())
	}
	fmt.Fprintf(c.stdout, "%s: OK (%d application(s))\n", c.path, len(cfg.Apps()))
	return 0
}

func runMigrate(ctx context.Context, c *invocation) int {
	cfg, ok := loadConfig(c)
	if !ok {
		return 1
	}
	if err := server.Migrate(ctx, cfg, c.stdout); err != nil {
		printErr(c.stderr, err)
		return 1
	}
	return 0
}

func runStoreCopy(ctx context.Context, c *invocation) int {
	if c.flags.from == "" || c.flags.to == "" {
		fmt.Fprint(c.stderr, "aero2 store copy: --from and --to are required\n\nUsage: aero2 store copy --from FILE --to FILE\n")
		return 2
	}
	var cfgs [2]*config.Config
	for i, path := range []string{c.flags.from, c.flags.to} {
		cfg, err := config.Load(path)
		if err != nil {
			printErr(c.stderr, err)
			return 1
		}
		cfgs[i] = cfg
	}
	if err := server.CopyStore(ctx, cfgs[0], cfgs[1], c.stdout); err != nil {
		printErr(c.stderr, err)
		return 1
	}
	return 0
}

// secretBytes is what `aero2 secret` draws: 256 bits, and 43 characters
// once encoded, over config.MinSecretLength.
const secretBytes = 32

func runSecret(_ context.Context, c *invocation) int {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	// base64url needs no quoting in YAML, a shell or an .env file.
	fmt.Fprintln(c.stdout, base64.RawURLEncoding.EncodeToString(b))
	return 0
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
	return v + ", " + keys.SignerName()
}
