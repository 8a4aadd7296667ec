package authz_test

import (
	"testing"

	"github.com/aero2/aero2/store/redis/redistest"
)

// TestMain stops the package's private Redis when its tests are done.
func TestMain(m *testing.M) { redistest.Main(m) }
