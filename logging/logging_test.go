package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
)

// hostile are strings a client controls and the access log writes (the
// path, the Host header): each must stay inside its one JSON string.
var hostile = []string{
	"plain", "", "quote\" backslash\\ slash/", "new\nline", "cr\rlf", "tab\t", "nul\x00", "\x1b[31mred",
	"bad utf-8 \xff\xfe", "cut rune \xe2\x82", "u2028 \u2028 u2029 \u2029", "<script>&amp;", "\u202eright-to-left",
	strings.Repeat("é", 300),
}

type point struct{ X, Y int }

type lazy struct{}

func (lazy) LogValue() slog.Value { return slog.StringValue("resolved") }

// TestJSONMatchesSlog: every line the zerolog-backed handler writes
// decodes to what slog's own JSON handler (with the millisecond
// durations) writes for the same record: the same keys, the same
// values, hostile strings included, and one line per record.
func TestJSONMatchesSlog(t *testing.T) {
	when := time.Date(2026, 12, 1, 14, 2, 11, 520_400_000, time.UTC)
	records := [][]slog.Attr{
		{slog.String("method", "GET"), slog.Int("status", 200), slog.Int64("bytes", -7), slog.Uint64("u", 1<<63),
			slog.Float64("f", 0.125), slog.Bool("ok", true), slog.Duration("wait", 1500*time.Microsecond)},
		{slog.Any("err", errors.New("boom \"quoted\"")), slog.Any("point", point{1, 2}), slog.Any("list", []string{"a", "b"}),
			slog.Any("nil", nil), slog.Any("lazy", lazy{}), slog.Time("at", when)},
		{slog.Group("g", slog.String("a", "1"), slog.Group("h", slog.Int("b", 2))), slog.Group("empty"),
			slog.Group("", slog.String("inline", "x")), {}},
	}
	for _, s := range hostile {
		records = append(records, []slog.Attr{slog.String("path", s), slog.String(s+"key", "v")})
	}
	for i, attrs := range records {
		var ours, theirs bytes.Buffer
		r := slog.NewRecord(when, slog.LevelWarn, "msg "+hostile[i%len(hostile)], 0)
		r.AddAttrs(attrs...)
		if err := NewJSON(&ours, slog.LevelInfo).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		ref := slog.NewJSONHandler(&theirs, &slog.HandlerOptions{ReplaceAttr: durationsInMilliseconds})
		if err := ref.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(ours.String(), "\n"); n != 1 || !strings.HasSuffix(ours.String(), "\n") {
			t.Errorf("record %d: %d newlines in %q", i, n, ours.String())
		}
		if got, want := decode(t, ours.Bytes()), decode(t, theirs.Bytes()); !reflect.DeepEqual(got, want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, ours.String(), theirs.String())
		}
	}
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, line)
	}
	return m
}

// TestWithAttrsAndGroups: attributes given once are on every line after
// them, and a group nests what follows, as with slog.
func TestWithAttrsAndGroups(t *testing.T) {
	var ours, theirs bytes.Buffer
	l := slog.New(NewJSON(&ours, slog.LevelDebug)).With("app", "default").WithGroup("req").With("id", 7)
	ref := slog.New(slog.NewJSONHandler(&theirs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("app", "default").WithGroup("req").With("id", 7)
	l.Debug("x", "n", 1)
	ref.Debug("x", "n", 1)
	got, want := decode(t, ours.Bytes()), decode(t, theirs.Bytes())
	delete(got, "time")
	delete(want, "time")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s\nwant %s", ours.String(), theirs.String())
	}
	var direct bytes.Buffer
	LogAttrs(context.Background(), slog.New(NewJSON(&direct, slog.LevelInfo)).With("app", "x"), slog.LevelInfo, "m", slog.Int("n", 1))
	if m := decode(t, direct.Bytes()); m["app"] != "x" || m["n"] != 1.0 {
		t.Errorf("LogAttrs on a handler with attributes: %s", direct.String())
	}
}

// TestLevels: records below the configured level are not written, by
// the handler or by LogAttrs; LogAttrs writes an enabled line, and on a
// logger that is not this package's goes through that logger.
func TestLevels(t *testing.T) {
	var b bytes.Buffer
	l := New(config.Log{Level: "warn", Format: "json"}, &b)
	defer slog.SetDefault(slog.Default())
	l.Info("quiet")
	ctx := context.Background()
	LogAttrs(ctx, l, slog.LevelInfo, "request", slog.String("path", "/x"))
	if b.Len() != 0 {
		t.Errorf("info written at level warn: %s", b.String())
	}
	LogAttrs(ctx, l, slog.LevelError, "request", slog.String("path", "/x\n"))
	m := decode(t, b.Bytes())
	if m["level"] != "ERROR" || m["msg"] != "request" || m["path"] != "/x\n" || m["time"] == nil {
		t.Errorf("line = %s", b.String())
	}
	var other bytes.Buffer
	LogAttrs(ctx, slog.New(slog.NewTextHandler(&other, nil)), slog.LevelInfo, "request", slog.String("path", "/y"))
	if !strings.Contains(other.String(), "msg=request path=/y") {
		t.Errorf("another logger's line = %q", other.String())
	}
}

// TestLogAttrsMatchesSlog: a line written by LogAttrs decodes to what
// slog's JSON handler writes for the same attributes, hostile strings
// included, as one line.
func TestLogAttrsMatchesSlog(t *testing.T) {
	ctx := context.Background()
	for _, s := range hostile {
		attrs := []slog.Attr{slog.String("path", s), slog.String("host", s), slog.Int("status", 200),
			slog.Float64("duration_ms", 0.5), slog.Bool("forward_auth", true), slog.String(s+"key", "v")}
		var ours, theirs bytes.Buffer
		LogAttrs(ctx, slog.New(NewJSON(&ours, slog.LevelInfo)), slog.LevelInfo, "request", attrs...)
		slog.New(slog.NewJSONHandler(&theirs, nil)).LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		if n := strings.Count(ours.String(), "\n"); n != 1 {
			t.Errorf("%q: %d newlines in %q", s, n, ours.String())
		}
		got, want := decode(t, ours.Bytes()), decode(t, theirs.Bytes())
		delete(got, "time")
		delete(want, "time")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s\nwant %s", ours.String(), theirs.String())
		}
	}
}

// TestLinesDoNotInterleave: concurrent lines from one handler, its
// derived handlers and LogAttrs each land whole on a writer that is not
// safe for concurrent use (the lock is shared).
func TestLinesDoNotInterleave(t *testing.T) {
	var b bytes.Buffer
	l := New(config.Log{Level: "info", Format: "json"}, &b)
	defer slog.SetDefault(slog.Default())
	g := l.WithGroup("g")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				switch i % 3 {
				case 0:
					l.Info("a", "v", strings.Repeat("x", 100))
				case 1:
					g.Info("b", "v", 1)
				default:
					LogAttrs(context.Background(), l, slog.LevelInfo, "c", slog.Int("v", 2))
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, line := range lines {
		decode(t, []byte(line))
	}
}

// TestDurationsInMilliseconds: whatever logs a time.Duration, the line
// says <key>_ms, a number of milliseconds, in JSON and in text.
func TestDurationsInMilliseconds(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	var b bytes.Buffer
	New(config.Log{Level: "info", Format: "json"}, &b).Info("shutting down", "timeout", 1500*time.Millisecond, "n", 3)
	line := decode(t, b.Bytes())
	if line["timeout_ms"] != 1500.0 || line["timeout"] != nil || line["n"] != 3.0 {
		t.Errorf("line = %s", b.String())
	}
	b.Reset()
	New(config.Log{Level: "info", Format: "text"}, &b).Info("x", "wait", 250*time.Microsecond)
	if !strings.Contains(b.String(), " wait_ms=0.25") {
		t.Errorf("text line = %q", b.String())
	}
}
