package memory

import (
	"context"
	"sync"
	"time"

	"github.com/aero2/aero2/store"
)

// bus delivers broadcasts within the process: with the memory store there
// is no other replica, but the provider's session manager and the proxy's
// session cache are two parts of this one.
type bus struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	channel string
	mu      sync.Mutex // fn is never called concurrently
	fn      func(store.Notice)
}

func (sb *subscriber) deliver(n store.Notice) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.fn(n)
}

// Broadcast delivers message to every subscriber of channel before it
// returns.
func (s *Store) Broadcast(_ context.Context, channel, message string) error {
	s.bus.mu.Lock()
	var to []*subscriber
	for sb := range s.bus.subs {
		if sb.channel == channel {
			to = append(to, sb)
		}
	}
	s.bus.mu.Unlock()
	for _, sb := range to {
		sb.deliver(store.Notice{Message: message})
	}
	return nil
}

// Subscribe delivers until ctx ends or the store is closed.
func (s *Store) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	sb := &subscriber{channel: channel, fn: fn}
	s.bus.mu.Lock()
	if s.bus.subs == nil {
		s.bus.subs = map[*subscriber]struct{}{}
	}
	s.bus.subs[sb] = struct{}{}
	s.bus.mu.Unlock()
	defer func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, sb)
		s.bus.mu.Unlock()
	}()
	sb.deliver(store.Notice{Fresh: true})
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
			sb.deliver(store.Notice{})
		}
	}
}
