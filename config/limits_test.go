package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitDefaults(t *testing.T) {
	src := strings.Replace(validBase, "  public_url: https://auth.example.com\n", `  public_url: https://auth.example.com
  rate_limits:
    token:
      per_client: {requests: 10}
      per_address: {unlimited: true}
`, 1)
	cfg, err := Parse("aero2.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	rl, def := cfg.Server.RateLimits, DefaultRateLimits()
	if rl.Disabled || rl.SignIn != def.SignIn || rl.AnonymousState != def.AnonymousState || rl.Introspect != def.Introspect {
		t.Errorf("defaults not applied: %+v", rl)
	}
	// An explicit rate keeps what it says and takes the rest from the
	// default: the period, and a burst of its own requests.
	if want := (Rate{Requests: 10, Per: time.Minute, Burst: 10}); rl.Token.PerClient != want {
		t.Errorf("token.per_client = %+v, want %+v", rl.Token.PerClient, want)
	}
	if !rl.Token.PerAddress.Off() {
		t.Errorf("token.per_address = %+v, want off", rl.Token.PerAddress)
	}
	if cfg.Server.ReadBodyTimeout != DefaultReadBodyTimeout || cfg.Server.ProxyBodyIdleTimeout != DefaultProxyBodyIdle {
		t.Errorf("body timeouts: %s, %s", cfg.Server.ReadBodyTimeout, cfg.Server.ProxyBodyIdleTimeout)
	}
}

func TestRateLimitProblemsHaveLineCol(t *testing.T) {
	src := strings.Replace(validBase, "  public_url: https://auth.example.com\n", `  public_url: https://auth.example.com
  read_body_timeout: -1s
  rate_limits:
    sign_in:
      per_address: {requests: -1}
    callback:
      per_account: {requests: 5, per: 48h, burst: 0}
    token:
      per_client: {unlimited: true, requests: 3}
      per_account: {requests: 1}
    introspect:
      per_address: {requests: 5, per: 1m, burst: 2000000}
`, 1)
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `aero2.yaml:4:3: server.read_body_timeout: must not be negative`)
	wantProblem(t, got, `aero2.yaml:7:21: server.rate_limits.sign_in.per_address.requests: must be at least 1`)
	wantProblem(t, got, `aero2.yaml:9:34: server.rate_limits.callback.per_account.per: must be between 1s and 24h0m0s, got 48h0m0s`)
	wantProblem(t, got, `aero2.yaml:11:20: server.rate_limits.token.per_client.unlimited: cannot be combined with requests, per or burst`)
	// A per_account limit where the endpoint has clients is a key error.
	wantProblem(t, got, `aero2.yaml:12:7: server.rate_limits.token.per_account: unknown key "per_account"`)
	wantProblem(t, got, `aero2.yaml:14:43: server.rate_limits.introspect.per_address.burst: must be between 1 and 1000000, got 2000000`)
	if len(got) != 6 {
		t.Errorf("want 6 problems, one each, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
}
