package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/metrics"
)

// BenchmarkObservations is what each kind of observation costs on its
// own (a proxied request makes one Request, one Upstream and a few Store
// observations; a token request one Request, one Signing, a few Store and
// one audit event), to set beside a request's whole time:
//
//	go test -run '^$' -bench BenchmarkObservations -benchmem ./metrics/
func BenchmarkObservations(b *testing.B) {
	m := metrics.New()
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"request", func() { m.Request("proxy", "routes[0]", 200, time.Millisecond) }},
		{"store", func() { m.Store("get_many", 200*time.Microsecond, false) }},
		{"upstream", func() { m.Upstream("routes[0]", 200, time.Millisecond) }},
		{"signing", func() { m.Signing("default", time.Millisecond) }},
		{"audit_event", func() {
			m.Log(ctx, audit.Event{Type: audit.TokenIssued, App: "default", GrantType: "client_credentials"})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.f()
			}
		})
	}
}
