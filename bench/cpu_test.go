package main

import (
	"context"
	"crypto/sha256"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store/redis/redistest"
)

// burn works until getrusage has counted d more (on a busy machine that
// takes longer than d), or a minute has passed.
func burn(d time.Duration) {
	sum := sha256.Sum256(nil)
	for c0, start := processCPU(), time.Now(); processCPU()-c0 < d && time.Since(start) < time.Minute; {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
}

// TestCPUMetersAgree reads this process's CPU both ways, getrusage and
// /proc/<pid>/stat (the reading used for Redis): after 300ms of work
// both must have grown by about as much, so a wrong /proc field or unit
// shows as a disagreement. (getrusage is read by burn as well: the check
// of it is that the meter around burn saw the work.)
func TestCPUMetersAgree(t *testing.T) {
	self := redisCPU{pid: os.Getpid()}
	p0, ok := self.read()
	if !ok {
		t.Fatal("/proc/self/stat could not be read")
	}
	r0 := processCPU()
	var m cpuMeter
	m.measure(func() int64 { burn(300 * time.Millisecond); return 3 })
	p1, _ := self.read()
	proc, rusage := p1-p0, processCPU()-r0
	if m.took < 300*time.Millisecond || m.took > rusage {
		t.Fatalf("getrusage grew %v, the meter %v, for 300ms of work", rusage, m.took)
	}
	if m.per() != m.took/3 {
		t.Fatalf("per %v of %v for 3", m.per(), m.took)
	}
	// /proc counts in 10ms ticks.
	if d := proc - rusage; d < -30*time.Millisecond || d > 30*time.Millisecond {
		t.Fatalf("/proc grew %v, getrusage %v", proc, rusage)
	}
}

// TestRedisCPUIsRead finds the test Redis's process and sees its CPU grow
// under commands.
func TestRedisCPUIsRead(t *testing.T) {
	rc := redistest.Config(t)
	r := newRedisCPU(rc.Addrs[0])
	c0, ok := r.read()
	if !ok {
		t.Fatalf("the Redis at %s runs here, but its CPU was not read", rc.Addrs[0])
	}
	c := goredis.NewClient(&goredis.Options{Addr: rc.Addrs[0]})
	defer c.Close()
	ctx := context.Background()
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		p := c.Pipeline()
		for range 500 {
			p.Ping(ctx)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c1, _ := r.read(); c1-c0 < 10*time.Millisecond {
		t.Fatalf("Redis's CPU grew %v under 300ms of pipelined PINGs", c1-c0)
	}
}

// A goroutine that sleeps parks its thread (a futex or epoll wait): the
// process's context switches grow.
func TestContextSwitchesCounted(t *testing.T) {
	c0 := contextSwitches()
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	if c1 := contextSwitches(); c1 <= c0 {
		t.Fatalf("20 sleeps, context switches %d then %d", c0, c1)
	}
}
