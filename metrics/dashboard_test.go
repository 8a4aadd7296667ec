package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aero2/aero2/metrics"
)

// TestDashboardNamesOnlyRealMetrics: the Grafana dashboard in examples/
// is JSON, and every aero2_ metric its queries name is one Metrics
// registers (histograms by their _bucket, _count or _sum), so that a
// renamed metric cannot leave a panel silently empty.
func TestDashboardNamesOnlyRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("../examples/grafana/aero2-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() { metrics.New().Registry().Describe(ch); close(ch) }()
	nameRE := regexp.MustCompile(`fqName: "([a-z_:0-9]+)"`)
	for desc := range ch {
		if m := nameRE.FindStringSubmatch(desc.String()); m != nil {
			known[m[1]] = true
		}
	}
	if !known["aero2_http_request_duration_seconds"] || !known["go_goroutines"] {
		t.Fatalf("the registry's names were not read: %v", known)
	}
	used := regexp.MustCompile(`\baero2_[a-z_]+`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range used.FindAllString(tg.Expr, -1) {
				n++
				base := name
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(name, suf); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q queries %s, which Aero2 does not export", p.Title, name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d metric names in the dashboard", n)
	}
}
