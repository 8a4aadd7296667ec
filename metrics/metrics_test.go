package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/metrics"
)

// TestRequestAndUpstreamSeries: the request and upstream histograms, whose
// children are kept by label values (metrics/children.go), count each
// observation under the right labels: the kind ("other" when empty), the
// status class ("other" outside 100–599), and "error" for an upstream
// that gave no response.
func TestRequestAndUpstreamSeries(t *testing.T) {
	m := metrics.New()
	for range 3 {
		m.Request("authorize", "", 200, time.Millisecond)
	}
	m.Request("token", "refresh_token", 400, time.Millisecond)
	m.Request("", "", 0, time.Millisecond)
	m.Request("proxy", "routes[0]", 999, time.Millisecond)
	m.Upstream("routes[0]", 0, time.Millisecond)
	m.Upstream("routes[0]", 0, time.Millisecond)
	m.Upstream("routes[0]", 502, time.Millisecond)
	m.Upstream("routes[1]", 204, time.Millisecond)
	counts := map[string]uint64{}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if name != "aero2_http_request_duration_seconds" && name != "aero2_upstream_duration_seconds" && name != "aero2_upstream_errors_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			n := mt.GetHistogram().GetSampleCount()
			if c := mt.GetCounter(); c != nil {
				n = uint64(c.GetValue())
			}
			counts[name+"{"+strings.Join(ls, ",")+"}"] = n
		}
	}
	for series, n := range map[string]uint64{
		"aero2_http_request_duration_seconds{detail=,kind=authorize,status=2xx}":          3,
		"aero2_http_request_duration_seconds{detail=refresh_token,kind=token,status=4xx}": 1,
		"aero2_http_request_duration_seconds{detail=,kind=other,status=other}":            1,
		"aero2_http_request_duration_seconds{detail=routes[0],kind=proxy,status=other}":   1,
		"aero2_upstream_duration_seconds{route=routes[0],status=error}":                   2,
		"aero2_upstream_duration_seconds{route=routes[0],status=5xx}":                     1,
		"aero2_upstream_duration_seconds{route=routes[1],status=2xx}":                     1,
	} {
		if counts[series] != n {
			t.Errorf("%s: %d observations, want %d", series, counts[series], n)
		}
	}
	if len(counts) != 8 {
		t.Errorf("%d series, want 8: %v", len(counts), counts)
	}
}
