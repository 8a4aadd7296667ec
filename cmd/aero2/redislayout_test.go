package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestRedisLayoutUpgrade is the upgrade docs/config.md describes: serve
// refuses a prefix holding users in the one-slot layout of earlier
// versions unless key_layout says application; aero2 store copy then
// copies its users, identities, consents and keys into a new prefix in
// the spread layout, where they are found.
func TestRedisLayoutUpgrade(t *testing.T) {
	ctx := context.Background()
	oldCfg := redistest.Config(t)
	oldCfg.KeyLayout = config.RedisLayoutApplication
	src, err := redis.Open(ctx, oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now().UTC()
	u := &store.User{ID: "u1", App: "default", Email: "u1@example.com", EmailVerified: true, CreatedAt: now, LastLogin: now}
	id := &store.Identity{App: "default", IDP: "github", Subject: "42", UserID: "u1", LinkedAt: now, LastLogin: now}
	if err := src.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := src.SetAdd(ctx, "default", store.ConsentKey("u1", "web"), time.Hour, "openid"); err != nil {
		t.Fatal(err)
	}
	if err := src.Create(ctx, "default", store.SigningKeysKey, []byte("sealed key set"), 0); err != nil {
		t.Fatal(err)
	}
	storeYAML := func(prefix, layout string) string {
		return good + "store: {type: redis, redis: {addrs: [\"" + redistest.Addr() + "\"], key_prefix: " + prefix + ", key_layout: " + layout + "}}\n"
	}
	// The new version's default layout on the old prefix: refused, saying
	// what to do — not a server with no users.
	spreadOnOld := writeConfig(t, storeYAML(oldCfg.KeyPrefix, "spread"))
	if code, _, errs := runCmd(t, "store", "copy", "--from", spreadOnOld, "--to", spreadOnOld); code != 1 || !strings.Contains(errs, "key_layout: application") {
		t.Fatalf("spread layout on an old prefix: %d %q", code, errs)
	}
	newCfg := redistest.Config(t)
	from := writeConfig(t, storeYAML(oldCfg.KeyPrefix, "application"))
	to := writeConfig(t, storeYAML(newCfg.KeyPrefix, "spread"))
	code, out, errs := runCmd(t, "store", "copy", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "users 1 copied") || !strings.Contains(out, "identities 1 copied") || !strings.Contains(out, "signing keys copied") {
		t.Fatalf("copy: %d %q %q", code, out, errs)
	}
	dst, err := redis.Open(ctx, newCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, _, err := dst.UserByIdentity(ctx, "default", "github", "42")
	if err != nil || got.ID != "u1" || got.Email != "u1@example.com" {
		t.Fatalf("copied user in the spread layout: %+v %v", got, err)
	}
	if us, err := dst.UsersByVerifiedEmail(ctx, "default", "u1@example.com"); err != nil || len(us) != 1 {
		t.Fatalf("copied email index: %v %v", us, err)
	}
	if m, err := dst.SetMembers(ctx, "default", store.ConsentKey("u1", "web")); err != nil || len(m) != 1 {
		t.Fatalf("copied consent: %v %v", m, err)
	}
}
