package authz

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// TestBackchannelQueueIsBounded: past bclMaxQueue queued logouts a new
// one is dropped (and logged), not stored: what an ending session makes
// Aero2 store stays bounded, and the ending itself does not fail.
func TestBackchannelQueueIsBounded(t *testing.T) {
	st := memory.New()
	defer st.Close()
	p := &Provider{opts: Options{Store: store.ForApp(st, "a"), Now: time.Now}, st: store.ForApp(st, "a"), app: "a", log: slog.New(slog.DiscardHandler)}
	p.bcl = &backchannel{kick: make(chan struct{}, 1)}

	if err := p.enqueueLogout(t.Context(), bclJobRecord{Client: "rp", SID: "s0"}); err != nil {
		t.Fatal(err)
	}
	ids, _ := st.SetMembers(t.Context(), "a", bclQueue)
	if len(ids) != 1 {
		t.Fatalf("queue has %d jobs, want 1", len(ids))
	}
	if _, err := st.Get(t.Context(), "a", bclJob+ids[0]); err != nil {
		t.Fatalf("job record: %v", err)
	}
	filler := make([]string, bclMaxQueue-1)
	for i := range filler {
		filler[i] = fmt.Sprintf("filler-%d", i)
	}
	if err := st.SetAdd(t.Context(), "a", bclQueue, 0, filler...); err != nil {
		t.Fatal(err)
	}
	if err := p.enqueueLogout(t.Context(), bclJobRecord{Client: "rp", SID: "s1"}); err != nil {
		t.Fatalf("a full queue failed the ending: %v", err)
	}
	if ids, _ := st.SetMembers(t.Context(), "a", bclQueue); len(ids) != bclMaxQueue {
		t.Fatalf("queue has %d jobs, want it to stay at %d", len(ids), bclMaxQueue)
	}
}
