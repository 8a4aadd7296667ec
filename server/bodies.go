package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Request bodies arrive under a deadline. http.Server's ReadTimeout would
// bound every request, proxied uploads and streams included, so it stays
// unset; instead each request that has a body gets one of two deadlines
// on its connection, through http.ResponseController:
//
//   - Aero2's own endpoints (the provider's, the sign-in pages' forms,
//     the proxy's /.aero2/ forms) read small bodies: the whole body must
//     arrive within server.read_body_timeout.
//   - Proxied requests stream to the upstream for as long as they keep
//     sending: each read may wait at most server.proxy_body_idle_timeout.
//
// Without them, a client sending a byte every few seconds held a
// connection (and a goroutine) for ever.

// limitBody puts r's body under its deadline: idle > 0 bounds each read,
// otherwise total bounds the whole body. It returns the body (nil when
// there is nothing to bound), to ask afterwards whether it timed out.
func limitBody(w http.ResponseWriter, r *http.Request, total, idle time.Duration) *deadlineBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil // nothing to read; an upgraded connection stays unbounded
	}
	rc := http.NewResponseController(w)
	if idle <= 0 {
		if rc.SetReadDeadline(time.Now().Add(total)) != nil {
			return nil // not a connection (an in-process call): nothing to bound
		}
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: rc, idle: idle}
	r.Body = b
	return b
}

type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration // 0: the deadline was set once, for the whole body
	done bool
	// late is set when the deadline passed. It is read by the handler's
	// goroutine while a proxied body is read by the transport's.
	late atomic.Bool
}

// timedOut reports whether the body's deadline passed.
func (b *deadlineBody) timedOut() bool { return b != nil && b.late.Load() }

// answerLate answers 408 for a request whose body timed out when the
// handler could not answer: net/http cancels the request's context when
// the connection's read fails, and the proxy answers nothing to a
// cancelled request (net/http would then send an empty 200).
func answerLate(w http.ResponseWriter, b *deadlineBody) {
	if rec, ok := w.(*statusRecorder); ok && rec.status == 0 && b.timedOut() {
		w.Header().Set("Connection", "close")
		http.Error(w, "The request body did not arrive in time.", http.StatusRequestTimeout)
	}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	if b.idle > 0 {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b.late.Store(true)
	}
	if err == io.EOF {
		// The body is over, and no more deadlines are set: net/http lifts
		// this one as it starts reading the connection in the background
		// (to notice a client that leaves), and one passing there would
		// cancel the request while its answer is still on the way (a slow
		// upstream). After any other error (the deadline itself) the
		// deadline stays, so that what net/http reads of the rest of the
		// body is bounded too.
		b.done = true
	}
	return n, err
}
