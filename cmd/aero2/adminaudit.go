package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres"
)

// Every admin command that changes something (its command has an action)
// writes one admin.action event per change to the audit log the
// configuration names (log.audit: the servers' own sink, stdout or a
// file): the action, its target, the application, the operator (the
// operating-system user and the host the command ran on) and the outcome,
// with a reason word when it failed. Identifiers only, never a secret: the
// configuration's secrets are not read here at all. A command that fails
// before it reaches the store (a usage error, an argument refused below)
// changed nothing and writes none.

// operator is who runs the command: the operating-system user (its uid
// when the user database has no name for it) and the host name.
func operator() (name, host string) {
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = "uid " + strconv.Itoa(os.Getuid())
	}
	host, _ = os.Hostname()
	return name, host
}

// baseEvent is the command's admin.action event before it runs: the
// target is what the command line names (the positional ID, else --user).
func baseEvent(c *invocation, action string) audit.Event {
	e := audit.Event{Type: audit.AdminAction, Action: action, App: c.flags.app, User: c.flags.user, Client: c.flags.client}
	e.Actor, e.ActorHost = operator()
	switch {
	case len(c.args) > 0:
		e.Target = c.args[0]
	default:
		e.Target = c.flags.user
	}
	return e
}

// record writes the command's event with the outcome err says. e.App is
// kept when app is "" (the command failed before it found one).
func (c *invocation) record(ctx context.Context, app string, err error, edit ...func(*audit.Event)) {
	if c.event == nil {
		return
	}
	e := *c.event
	if app != "" {
		e.App = app
	}
	for _, f := range edit {
		f(&e)
	}
	e.Outcome = audit.Succeeded
	if err != nil {
		e.Outcome, e.Reason = audit.Failed, failReason(err)
	}
	audit.Log(ctx, c.audit, e)
}

// failReason is a failed action's reason: a machine word, never the
// error's text (which may quote what the command line gave).
func failReason(err error) string {
	switch {
	case errors.Is(err, server.ErrNoSuchUser):
		return "no_such_user"
	case errors.Is(err, server.ErrNoSuchSession):
		return "no_such_session"
	case errors.Is(err, server.ErrNoSuchApplication):
		return "no_such_application"
	case errors.Is(err, postgres.ErrSchemaOutdated):
		return "schema_outdated"
	case errors.Is(err, store.ErrUnavailable), errors.As(err, new(*server.StoreError)):
		return "store_unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	}
	return "error"
}

// maxIDLength bounds an identifier from the command line: user IDs are 26
// characters, session IDs 43, client and application names are the
// configuration's; nothing legitimate comes near it.
const maxIDLength = 256

// checkIDs refuses identifiers that no store holds and that would forge
// output: too long, not UTF-8, or with a control or other non-printing
// character (a newline would add a line to a table or to whatever reads
// the command's text; a bidirectional override would reorder one). The
// store is not asked about them, so nothing reaches the audit log either.
func checkIDs(c *invocation) error {
	check := func(what, v string) error {
		switch {
		case len(v) > maxIDLength:
			return usageError(fmt.Sprintf("%s is %d bytes long, over %d: not an identifier", what, len(v), maxIDLength))
		case !utf8.ValidString(v):
			return usageError(fmt.Sprintf("%s %s is not UTF-8", what, quoteShort(v)))
		case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			return usageError(fmt.Sprintf("%s %s has a control or non-printing character", what, quoteShort(v)))
		}
		return nil
	}
	for _, a := range c.args {
		if err := check("the argument", a); err != nil {
			return err
		}
	}
	for _, f := range [][2]string{{"--app", c.flags.app}, {"--user", c.flags.user}, {"--client", c.flags.client}} {
		if err := check(f[0], f[1]); err != nil {
			return err
		}
	}
	return nil
}

// quoteShort quotes v for an error line: escaped, and cut to 40 bytes.
func quoteShort(v string) string {
	if len(v) > 40 {
		return strconv.Quote(v[:40]) + "…"
	}
	return strconv.Quote(v)
}

// cell is a table cell: as it is when every character prints and none
// is a tab, else quoted with Go's escapes. Names, usernames and emails
// come from identity providers, hostile ones included; a newline in one
// must not make a line of its own in `aero2 users list`.
func cell(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r == '\t' || !unicode.IsPrint(r) }) < 0 && utf8.ValidString(s) {
		return s
	}
	return strconv.Quote(s)
}
