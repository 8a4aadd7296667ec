package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// children keeps the observers of one HistogramVec by their label values.
// WithLabelValues checks that every value is UTF-8, hashes them and looks
// the child up under a lock on each call: most of what metrics cost a
// proxied request, which makes two such calls (the request, the upstream
// call). A lookup here is one read-locked map access with a key of plain
// values. Labels take values from bounded sets only (see the package
// comment), so the map is bounded too.
type children[K comparable] struct {
	vec *prometheus.HistogramVec
	// labels are k's label values, in the vec's order.
	labels func(k K) []string
	mu     sync.RWMutex
	m      map[K]prometheus.Observer
}

func newChildren[K comparable](vec *prometheus.HistogramVec, labels func(K) []string) *children[K] {
	return &children[K]{vec: vec, labels: labels, m: map[K]prometheus.Observer{}}
}

// get returns the child for k, made the first time.
func (c *children[K]) get(k K) prometheus.Observer {
	c.mu.RLock()
	o := c.m[k]
	c.mu.RUnlock()
	if o != nil {
		return o
	}
	o = c.vec.WithLabelValues(c.labels(k)...)
	c.mu.Lock()
	c.m[k] = o
	c.mu.Unlock()
	return o
}
