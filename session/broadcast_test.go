package session_test

import (
	"strings"
	"testing"

	"github.com/aero2/aero2/session"
)

// TestEndedMessages: an ended-session message reads back as written; a
// malformed one (anything on the channel is another process's bytes) is
// refused, never read as some session's end. The worst a hostile message
// can do is name a session, which only drops it from caches.
func TestEndedMessages(t *testing.T) {
	msg := session.EndedMessage("blog", session.EndedProvider, "abc")
	if app, kind, id, ok := session.ParseEnded(msg); !ok || app != "blog" || kind != session.EndedProvider || id != "abc" {
		t.Fatalf("round trip: %q %q %q %v", app, kind, id, ok)
	}
	for _, m := range []string{"", "blog", "blog\x00s", "blog\x00s\x00", "\x00\x00", strings.Repeat("x", 1<<16)} {
		if app, kind, id, ok := session.ParseEnded(m); ok {
			t.Errorf("%.20q read as app %q kind %q id %q", m, app, kind, id)
		}
	}
}
