package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

func (s *Store) channel(name string) string { return s.prefix + ":" + name }

// Broadcast is PUBLISH (cluster-wide on Redis Cluster).
func (s *Store) Broadcast(ctx context.Context, channel, message string) error {
	return wrap(s.c.Publish(ctx, s.channel(channel), message).Err())
}

// Subscribe is SUBSCRIBE on a connection of its own. When nothing arrives
// for a heartbeat it sends PING, whose PONG is the heartbeat: a connection
// that died silently stops the heartbeats, and the subscriber stops
// trusting what it has not heard. go-redis reconnects and subscribes again
// after an error; the confirmation of that is the Fresh notice.
func (s *Store) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	ps := s.c.Subscribe(ctx, s.channel(channel))
	defer ps.Close()
	for ctx.Err() == nil {
		m, err := ps.ReceiveTimeout(ctx, heartbeat)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx) // an error here reconnects at the next receive
				continue
			}
			// Lost: wait a little before reconnecting.
			select {
			case <-ctx.Done():
				return
			case <-time.After(heartbeat):
			}
			continue
		}
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				fn(store.Notice{Fresh: true})
			}
		case *goredis.Message:
			fn(store.Notice{Message: m.Payload})
		case *goredis.Pong:
			fn(store.Notice{})
		}
	}
}
