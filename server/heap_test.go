package server_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/memory"
)

// maxSignInHeap is issue 13's "memory store ≤ 4 KB of RSS per sign-in",
// bounded as live heap (see TestSignInHeapOnMemoryStore).
const maxSignInHeap = 4096

// heapSignIns is how many users the test signs in: enough that the
// growth of 4 KiB each (1 MB) swamps what moves on its own (the runtime,
// a map of the store growing by a table: tens of KiB; 3,084-3,148 B per
// sign-in measured in four runs, 3,503-3,533 B with 150, whose share of
// that is larger), few enough for CI under -race (two sign-ins each).
const heapSignIns = 250

// TestSignInHeapOnMemoryStore signs heapSignIns users in through the
// proxy (identity headers only) with the memory store, each in a browser
// of its own, and bounds the growth of the whole process's live heap per
// sign-in: everything the sign-in leaves behind in the store (the browser
// and proxy sessions, the access token's record, used codes and login
// state until they expire, the indexes) and beside it.
//
// Heap, not RSS: RSS is what the kernel has mapped, and the Go runtime
// returns freed pages to it lazily and in chunks (the scavenger), keeps
// spans and stacks it may reuse, and grows in arenas of megabytes, so the
// RSS of N sign-ins moves in steps that say little about N, and depends
// on when the last collection ran. HeapAlloc after runtime.GC is the
// bytes still reachable: what the sign-ins keep, which RSS holds at
// least (GOGC=100 lets the heap grow to twice the live bytes between
// collections; that factor is the runtime's, the same for any record, and
// GOMEMLIMIT bounds it).
//
// Every user signs in once at the provider alone before the measure,
// which creates the user and its identity (a user's, not a sign-in's, as
// in the Redis footprint); the measured round signs the same users in
// again through the proxy in new browsers: a returning user's sign-in.
// The browsers, their cookie jars and their connections are dropped
// before the heap is read, and the server's logs are discarded, so that
// what the test itself keeps does not count. Rate limits are off: their
// buckets are per client address, and every sign-in here is from one.
//
// The proxy's cache of validated sessions is not counted: the heap is
// read once session_cache (1s here, to wait less; 2s by default) has
// lapsed and a sign-in has swept it. An
// entry (a decoded session, 2.5 KB of it in claims) lives one or two
// session_cache, not for every sign-in a process serves: the cache holds
// what sign-ins of the last seconds made, however many came before. (It
// did, until it held 100,000 sessions: 5,635 B per sign-in measured.)
func TestSignInHeapOnMemoryStore(t *testing.T) {
	var users strings.Builder
	for i := range heapSignIns {
		fmt.Fprintf(&users, "        - {username: %s, email: %s@example.com}\n", heapUser(i), heapUser(i))
	}
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + users.String() + `
proxy: {session_cache: 1s}
routes:
  - {path: /app, upstream: "` + tokenEcho(t).URL + `"}
`
	in := servertest.StartWith(t, cfg, servertest.Options{
		Store:  memory.New(),
		Server: server.Options{Logger: slog.New(slog.DiscardHandler)},
	})
	signIn := func(user string) {
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(in.URL+"/app/start", user); p.Status != http.StatusOK {
			t.Fatalf("sign-in of %s ended at %d %s", user, p.Status, p.URL)
		}
		b.CloseIdleConnections()
	}
	signIn("alice")
	lapse := func() uint64 {
		time.Sleep(time.Second + 100*time.Millisecond)
		signIn("alice") // sweeps the proxy's cache
		return liveHeap()
	}
	// The users first sign in at the provider alone (no proxy, no
	// tokens: the cheapest sign-in that makes a user).
	for i := range heapSignIns {
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", heapUser(i)); p.Status != http.StatusOK {
			t.Fatalf("first sign-in of %s ended at %d %s", heapUser(i), p.Status, p.URL)
		}
		b.CloseIdleConnections()
	}
	before := lapse()
	for i := range heapSignIns {
		signIn(heapUser(i))
	}
	after := lapse()
	per := (int64(after) - int64(before)) / heapSignIns
	t.Logf("live heap %d → %d B over %d sign-ins: %d B per sign-in (bound %d)", before, after, heapSignIns, per, maxSignInHeap)
	if per > maxSignInHeap {
		t.Errorf("%d B of live heap per sign-in, more than %d", per, maxSignInHeap)
	}
	runtime.KeepAlive(in)
}

func heapUser(i int) string { return fmt.Sprintf("heap-%04d", i) }

// liveHeap is the bytes reachable after a full collection; two, since a
// collection can free what the finalizers of the first one released.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
