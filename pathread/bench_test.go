package pathread_test

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/aero2/aero2/pathread"
)

// BenchmarkRead: the cost of reading a path every way, for an ordinary
// path (the common case: two readings), one that many readers read
// differently, and long hostile ones; each against the baseline of one
// reading by the standard library (url.PathUnescape, path.Clean) in the
// same run.
func BenchmarkRead(b *testing.B) {
	for _, tc := range []struct{ name, path string }{
		{"plain", "/app/reports/2026/summary.html"},
		{"encoded", "/app/r%C3%A9ports;jsessionid=ABC/a%2520b/%2e%2e%2e"},
		{"long", "/" + strings.Repeat("a%25;b/", 300)},
		{"dots", strings.Repeat("/a/..", 300)},
	} {
		b.Run(tc.name+"/pathread", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pathread.Read(tc.path)
			}
		})
		b.Run(tc.name+"/stdlib-one-reading", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, _ := url.PathUnescape(tc.path)
				_ = path.Clean(d)
			}
		})
	}
}
