// Package logging builds Aero2's process log: one JSON object per line
// (the default wherever standard error is not a terminal), or slog's text
// on a terminal. Every duration is logged as "<key>_ms", a number of
// milliseconds.
//
// The JSON lines keep the shape of log/slog's JSON handler ("time",
// "level":"INFO", "msg", then the attributes, groups as nested objects),
// but are encoded by zerolog: through slog's handler an access log line
// cost about 20,300 instructions, 7.8% of a proxied request; handed to
// zerolog's encoder directly (LogAttrs), the same line costs about 9,400
// (figures in bench/README.md). Code logs through *slog.Logger as
// everywhere else; only the one line every request writes takes the
// direct path.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/aero2/aero2/config"
)

// timeLayout is slog's: RFC 3339 with the fraction of a second, trailing
// zeros dropped ("2026-12-01T14:02:11.5204Z").
const timeLayout = time.RFC3339Nano

func init() {
	// zerolog formats Event.Time with this package-wide setting. Aero2 is
	// its only user in the process; slog's layout keeps lines as before.
	zerolog.TimeFieldFormat = timeLayout
}

// New returns the logger c configures, writing to w: text on a terminal
// and JSON otherwise (format auto), at c.Level (info when unset or not
// a level). It is also slog's default logger from then on.
func New(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	format := c.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsInMilliseconds})
	} else {
		h = NewJSON(w, level)
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

// durationsInMilliseconds logs every time.Duration as "<key>_ms": slog's
// handlers would write integer nanoseconds (JSON) or "1.5s" (text), which
// no reader of the other fields expects.
func durationsInMilliseconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", milliseconds(a.Value.Duration()))
	}
	return a
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// NewJSON returns a handler writing one JSON object per line to w, for
// records at level and above. Each line is one Write, under one lock
// shared by every handler derived from this one, so that lines written
// at once never interleave, whatever w is.
func NewJSON(w io.Writer, level slog.Leveler) slog.Handler {
	sw := zerolog.SyncWriter(w)
	return &jsonHandler{
		zl:    zerolog.New(sw),
		level: level,
		// Groups are rare (Aero2 logs none); a handler that has one
		// hands its records to slog's own JSON handler, on the same
		// locked writer.
		grouped: slog.NewJSONHandler(sw, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsInMilliseconds}),
	}
}

type jsonHandler struct {
	zl      zerolog.Logger
	level   slog.Leveler
	attrs   []slog.Attr // from WithAttrs, written before each record's own
	grouped slog.Handler
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *jsonHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.start(r.Time, r.Level, r.Message)
	for _, a := range h.attrs {
		appendAttr(ev, a)
	}
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(ev, a)
		return true
	})
	ev.Send()
	return nil
}

// start begins a line as slog's JSON handler does: time (when set),
// level, msg.
func (h *jsonHandler) start(t time.Time, l slog.Level, msg string) *zerolog.Event {
	ev := h.zl.Log()
	if !t.IsZero() {
		ev.Time(slog.TimeKey, t)
	}
	return ev.Str(slog.LevelKey, l.String()).Str(slog.MessageKey, msg)
}

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.attrs = append(append(make([]slog.Attr, 0, len(h.attrs)+len(as)), h.attrs...), as...)
	c.grouped = h.grouped.WithAttrs(as)
	return &c
}

func (h *jsonHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.grouped.WithGroup(name)
}

// appendAttr writes a as slog's JSON handler would: LogValuers
// resolved, empty attributes and empty groups left out, an inline group
// (empty key) flattened, durations in milliseconds, errors as their
// text, anything else as encoding/json writes it.
func appendAttr(ev *zerolog.Event, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	switch v.Kind() {
	case slog.KindString:
		ev.Str(a.Key, v.String())
	case slog.KindInt64:
		ev.Int64(a.Key, v.Int64())
	case slog.KindUint64:
		ev.Uint64(a.Key, v.Uint64())
	case slog.KindFloat64:
		ev.Float64(a.Key, v.Float64())
	case slog.KindBool:
		ev.Bool(a.Key, v.Bool())
	case slog.KindDuration:
		ev.Float64(a.Key+"_ms", milliseconds(v.Duration()))
	case slog.KindTime:
		ev.Str(a.Key, v.Time().Format(time.RFC3339Nano))
	case slog.KindGroup:
		as := v.Group()
		if len(as) == 0 {
			return
		}
		if a.Key == "" {
			for _, g := range as {
				appendAttr(ev, g)
			}
			return
		}
		d := zerolog.Dict()
		for _, g := range as {
			appendAttr(d, g)
		}
		ev.Dict(a.Key, d)
	default:
		if err, ok := v.Any().(error); ok {
			ev.Str(a.Key, err.Error())
		} else {
			ev.Interface(a.Key, v.Any())
		}
	}
}

// LogAttrs logs msg with attrs at level through l, as l.LogAttrs does.
// When l writes JSON lines through this package, the line goes straight
// to the encoder: no slog.Record is built (past five attributes that is
// an allocation) and slog does not capture the caller's frame. It is for
// the line every request writes, the access log.
func LogAttrs(ctx context.Context, l *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	h, ok := l.Handler().(*jsonHandler)
	if !ok {
		l.LogAttrs(ctx, level, msg, attrs...)
		return
	}
	if !h.Enabled(ctx, level) {
		return
	}
	ev := h.start(time.Now(), level, msg)
	for _, a := range h.attrs {
		appendAttr(ev, a)
	}
	for _, a := range attrs {
		appendAttr(ev, a)
	}
	ev.Send()
}
