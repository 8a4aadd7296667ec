package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// CPU time is the figure a shared machine moves least. Requests per second
// fall when another job takes a core; the CPU this process spends on one
// request does not, to first order (caches and a shared core's other
// hyperthread still move it). So besides the rates, each row reports the
// process's CPU per request (server and load generator: both are in this
// process) and, from the ceiling's slices, the CPU of the signatures in
// it; what is left is the cost beside the signatures, the part issue 13
// bounds. Redis runs in a process of its own, so its CPU is read apart.

// processCPU is the CPU time (user and system, every thread, cgo's
// included) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// contextSwitches is the voluntary and involuntary context switches of
// every thread of this process (getrusage sums them over the threads): the
// cost of a cgo call's P handoff (a thread woken, one put to sleep) shows
// here. sysmon's own sleeps count too, so the ceiling's slices, which
// only sign, are not at zero: compare a row's csw/req with its csw/sig.
func contextSwitches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Nvcsw + ru.Nivcsw
}

// cpuMeter adds up CPU time over slices.
type cpuMeter struct {
	took time.Duration
	csw  int64 // context switches
	n    int64 // requests or signatures
}

// measure runs f, which does n units of work, and adds its CPU time.
func (m *cpuMeter) measure(f func() int64) {
	c0, s0 := processCPU(), contextSwitches()
	n := f()
	m.took += processCPU() - c0
	m.csw += contextSwitches() - s0
	m.n += n
}

// cswPer is the context switches per unit.
func (m *cpuMeter) cswPer() float64 {
	if m.n == 0 {
		return 0
	}
	return float64(m.csw) / float64(m.n)
}

// per is the CPU time per unit; 0 without any.
func (m *cpuMeter) per() time.Duration {
	if m.n == 0 {
		return 0
	}
	return m.took / time.Duration(m.n)
}

// redisCPU reads the CPU time of a Redis server on this machine: its
// process_id from INFO, then /proc (Linux). ok is false for a server
// elsewhere, or without /proc.
type redisCPU struct{ pid int }

func newRedisCPU(addr string) redisCPU {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		return redisCPU{}
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if pid, err := strconv.Atoi(v); err == nil {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
					return redisCPU{pid: pid}
				}
			}
		}
	}
	return redisCPU{}
}

// clockTick is USER_HZ, the unit of /proc's times: 100 on every Linux
// architecture Go runs on.
const clockTick = 100

// read is the server's CPU time so far (utime + stime, fields 14 and 15
// of /proc/<pid>/stat, after the parenthesised command name).
func (r redisCPU) read() (time.Duration, bool) {
	if r.pid == 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+k) * time.Second / clockTick, true
}
