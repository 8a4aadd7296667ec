package authz

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/aero2/aero2/authz/oauthstore"
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

// TestBackchannelReachesEarlierRegistrations: a browser session ending
// queues a logout for the registrations in its one index and for those an
// earlier release kept in their own set (bcl-sid:), once each; a second
// ending queues nothing.
func TestBackchannelReachesEarlierRegistrations(t *testing.T) {
	st := memory.New()
	defer st.Close()
	app := store.ForApp(st, "a")
	p := &Provider{opts: Options{Store: app, Now: time.Now}, st: app, app: "a", log: slog.New(slog.DiscardHandler)}
	p.bcl = &backchannel{kick: make(chan struct{}, 1)}
	p.tokens = oauthstore.New(oauthstore.Options{Backend: app, GrantTTL: time.Hour, CodeTTL: time.Minute})
	ctx := t.Context()
	if err := p.tokens.AddLogoutTarget(ctx, "sid-1", "new rp", "alice", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAdd(ctx, "a", bclSession+"sid-1", time.Hour, "old-rp alice"); err != nil {
		t.Fatal(err)
	}
	if err := p.BackchannelLogout(ctx, "sid-1"); err != nil {
		t.Fatal(err)
	}
	jobs := func() map[string]bool {
		ids, _ := st.SetMembers(ctx, "a", bclQueue)
		got := map[string]bool{}
		for _, id := range ids {
			raw, err := st.Get(ctx, "a", bclJob+id)
			if err != nil {
				t.Fatal(err)
			}
			var j bclJobRecord
			if err := json.Unmarshal(raw, &j); err != nil {
				t.Fatal(err)
			}
			got[j.Client+"|"+j.Subject+"|"+j.SID] = true
		}
		return got
	}
	want := map[string]bool{"new rp|alice|sid-1": true, "old-rp|alice|sid-1": true}
	if got := jobs(); !maps.Equal(got, want) {
		t.Fatalf("queued %v, want %v", got, want)
	}
	if err := p.BackchannelLogout(ctx, "sid-1"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := st.SetMembers(ctx, "a", bclQueue); len(ids) != 2 {
		t.Fatalf("a second ending queued more: %d jobs", len(ids))
	}
}
