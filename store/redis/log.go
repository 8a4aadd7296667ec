package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis prints connection errors to stderr by itself, one line per dial
// attempt during an outage. Aero2 reports an outage once per failed request
// (503 and a warning) and on /readyz; the client's own lines go to debug.
func init() { goredis.SetLogger(slogLogger{}) }

type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelDebug, "redis client: "+fmt.Sprintf(format, v...))
}
