// Package observe_test tests Aero2's observability through the whole
// server: the metrics a scrape sees after real flows, and the audit log.
package observe_test

import (
	"testing"

	"github.com/aero2/aero2/store/redis/redistest"
)

// TestMain stops the package's private Redis when its tests are done.
func TestMain(m *testing.M) { redistest.Main(m) }
