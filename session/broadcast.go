package session

import (
	"context"
	"strings"

	"github.com/aero2/aero2/store"
)

// EndedChannel is the broadcast channel (store.Broadcasts) on which
// ended sessions are announced, so that every replica drops what it
// cached about them at once: the provider's sessions (by the manager) and
// the proxy's (by the proxy).
const EndedChannel = "ended-sessions"

// Kinds of ended session in an EndedChannel message.
const (
	EndedProvider = "s" // a provider (browser) session: its store ID, the `sid`
	EndedProxy    = "p" // a proxy session: its store ID
)

// EndedMessage is the message announcing that session id of kind ended in
// app.
func EndedMessage(app, kind, id string) string { return app + "\x00" + kind + "\x00" + id }

// ParseEnded reads an EndedMessage.
func ParseEnded(msg string) (app, kind, id string, ok bool) {
	app, rest, ok1 := strings.Cut(msg, "\x00")
	kind, id, ok2 := strings.Cut(rest, "\x00")
	return app, kind, id, ok1 && ok2 && id != ""
}

// announce broadcasts the end of sessions ids, when the store can.
func (m *Manager) announce(ctx context.Context, ids ...string) error {
	b, ok := m.be.(store.Broadcasts)
	if !ok {
		return nil
	}
	for _, id := range ids {
		if err := b.Broadcast(ctx, EndedChannel, EndedMessage(m.app, EndedProvider, id)); err != nil {
			return err
		}
	}
	return nil
}
