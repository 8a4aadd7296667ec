package config

import (
	"strings"
	"testing"
)

// server.metrics_listen is off by default, a host:port when set, and never
// the public port; log.audit is off by default.
func TestMetricsListenAndAudit(t *testing.T) {
	cfg, err := Parse("aero2.yaml", []byte(validBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MetricsListen != "" || cfg.Log.Audit != "" {
		t.Fatalf("metrics_listen %q, audit %q: want both off by default", cfg.Server.MetricsListen, cfg.Log.Audit)
	}
	with := func(keys string) string {
		return strings.Replace(validBase, "server:\n", "server:\n"+keys, 1)
	}
	onlyProblems(t, with("  metrics_listen: \"9090\"\n"),
		`aero2.yaml:3:3: server.metrics_listen: expected host:port`)
	onlyProblems(t, with("  metrics_listen: \"127.0.0.1:8080\"\n"),
		`aero2.yaml:3:3: server.metrics_listen: must not be the public port (server.listen is :8080)`)
	onlyProblems(t, with("  listen: \"0.0.0.0:9000\"\n  metrics_listen: \":9000\"\n"),
		`aero2.yaml:4:3: server.metrics_listen: must not be the public port (server.listen is 0.0.0.0:9000)`)
	cfg, err = Parse("aero2.yaml", []byte(with("  metrics_listen: \"127.0.0.1:9090\"\n")+"log: {audit: /var/log/aero2/audit.jsonl}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MetricsListen != "127.0.0.1:9090" || cfg.Log.Audit != "/var/log/aero2/audit.jsonl" {
		t.Fatalf("metrics_listen %q, audit %q", cfg.Server.MetricsListen, cfg.Log.Audit)
	}
}
