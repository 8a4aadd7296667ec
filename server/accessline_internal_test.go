package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/aero2/aero2/logging"
)

// TestAccessLineBothWays: the access log line written to the JSON log's
// encoder (the production path) decodes to the same object as the line
// written through slog (any other handler), for every optional field
// and for hostile client-chosen values.
func TestAccessLineBothWays(t *testing.T) {
	for _, l := range []accessLine{
		{method: "GET", host: "app.example.com", path: "/app/x", client: "192.0.2.7", status: 200, bytes: 12, d: 1500 * time.Microsecond},
		{method: "POST", host: "h", path: "/oauth2/token", client: "::1", status: 401, d: 3 * time.Millisecond,
			user: "u1", clientID: "web", requestID: "9f2c-3k"},
		{method: "G\"ET", host: "evil\n{\"user\":\"root\"}", path: "/\xff\x00\u2028/..%2f", client: "", status: 0,
			forwardAuth: true, requestID: "r"},
	} {
		var fast, slow bytes.Buffer
		ev := logging.Event(context.Background(), slog.New(logging.NewJSON(&fast, slog.LevelInfo)), slog.LevelInfo, "request")
		if ev == nil {
			t.Fatal("no fast path on logging's own JSON handler")
		}
		l.encode(ev)
		ev.Send()
		var attrs [11]slog.Attr
		slog.New(slog.NewJSONHandler(&slow, nil)).LogAttrs(context.Background(), slog.LevelInfo, "request", l.attrs(attrs[:0])...)
		got, want := decodeLine(t, fast.Bytes()), decodeLine(t, slow.Bytes())
		delete(got, "time")
		delete(want, "time")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fast %s\nslow %s", fast.String(), slow.String())
		}
		if got["user"] == "root" {
			t.Errorf("a Host header wrote a field: %s", fast.String())
		}
	}
}

func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not one JSON object: %v: %q", err, b)
	}
	return m
}
