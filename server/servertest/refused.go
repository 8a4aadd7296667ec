package servertest

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusingAddr returns a loopback address where connections are refused,
// for as long as the test runs. The port is held by a TCP socket that is
// bound but never listens: Linux answers SYNs to it with a reset, and no
// other listener (this test's next net.Listen on port 0, another test
// binary) can be given the port meanwhile. A port taken from a closed
// listener can be handed out again at once, and the "refused" upstream
// then accepts and never answers.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
