package proxy_test

import (
	"os"
	"testing"

	"github.com/aero2/aero2/store/redis/redistest"
)

// TestMain stops the package's private Redis (the fail-closed tests').
func TestMain(m *testing.M) {
	code := m.Run()
	redistest.ClosePrivate()
	os.Exit(code)
}
