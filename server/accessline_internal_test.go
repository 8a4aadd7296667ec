package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/reqlog"
)

// TestAccessLineBothWays: the access log line, written by
// logging.LogAttrs to the JSON log's encoder (the production path),
// decodes to the same object as through slog's own JSON handler (any
// other handler), for every optional field and for hostile client-chosen
// values; a Host header cannot write a field of its own.
func TestAccessLineBothWays(t *testing.T) {
	for _, tc := range []struct {
		method, host, path string
		user, client       string
		checked            *reqlog.Checked
	}{
		{method: "GET", host: "app.example.com", path: "/app/x"},
		{method: "POST", host: "h", path: "/oauth2/token", user: "u1", client: "web"},
		{method: "GET", host: "evil\n{\"user\":\"root\"}", path: "/\xff\x00\u2028/..%2f",
			checked: &reqlog.Checked{Method: "G\"ET", Host: "x\"y", Path: "/\\admin"}},
	} {
		r := httptest.NewRequest(tc.method, "http://h/", nil)
		r.Host, r.URL.Path = tc.host, tc.path
		rec := &statusRecorder{status: 401, bytes: 12}
		rec.note.Start("9f2c-3k", "192.0.2.7")
		ctx := reqlog.With(context.Background(), &rec.note)
		reqlog.SetUser(ctx, tc.user)
		reqlog.SetClient(ctx, tc.client)
		if c := tc.checked; c != nil {
			reqlog.SetChecked(ctx, c.Method, c.Host, c.Path)
		}
		r = r.WithContext(ctx)
		var attrs [11]slog.Attr
		line := rec.accessAttrs(attrs[:0], r, 1500*time.Microsecond)
		var fast, slow bytes.Buffer
		logging.LogAttrs(ctx, slog.New(logging.NewJSON(&fast, slog.LevelInfo)), slog.LevelInfo, "request", line...)
		slog.New(slog.NewJSONHandler(&slow, nil)).LogAttrs(ctx, slog.LevelInfo, "request", line...)
		got, want := decodeLine(t, fast.Bytes()), decodeLine(t, slow.Bytes())
		delete(got, "time")
		delete(want, "time")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fast %s\nslow %s", fast.String(), slow.String())
		}
		if got["user"] == "root" || got["request_id"] != "9f2c-3k" || got["duration_ms"] != 1.5 {
			t.Errorf("line %s", fast.String())
		}
		if (got["forward_auth"] == true) != (tc.checked != nil) {
			t.Errorf("forward_auth in %s", fast.String())
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
