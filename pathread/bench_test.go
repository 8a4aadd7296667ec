package pathread_test

import (
	"strings"
	"testing"

	"github.com/aero2/aero2/pathread"
)

// BenchmarkRead: the cost of reading a path, for an ordinary one (the
// common case: two readings) and for one that every reader reads
// differently (18 readers).
func BenchmarkRead(b *testing.B) {
	for name, p := range map[string]string{
		"plain":   "/app/reports/2026/summary.html",
		"encoded": "/app/r%C3%A9ports;jsessionid=ABC/a%2520b/%2e%2e%2e",
		"long":    "/" + strings.Repeat("a%25;b/", 300),
		"dots":    strings.Repeat("/a/..", 300),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pathread.Read(p)
			}
		})
	}
}
