package servertest

import (
	"io"
	"net/http"
	"testing"
)

// MustOK sends r with c, reads the whole answer and returns its body; it
// fails tb unless the answer is 200. For benchmarks, where every request
// must succeed for the figures to mean anything.
func MustOK(tb testing.TB, c *http.Client, r *http.Request) []byte {
	tb.Helper()
	res, err := c.Do(r)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", r.Method, r.URL.Path, err)
	}
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", r.Method, r.URL.Path, res.StatusCode, body)
	}
	return body
}
