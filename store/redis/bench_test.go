package redis_test

// BenchmarkPutParallel is the store's one write of every client-credentials
// token (a SET with PX of a short record) from many goroutines at once, as
// a busy token endpoint makes it. redis-µs/op is the whole server's CPU
// divided by the calls, so give the benchmark a redis-server of its own
// (the package's private one writes every command to its append-only file,
// which would be measured too):
//
//	redis-server --port 6391 --save '' --appendonly no --daemonize yes
//	AERO2_TEST_REDIS_ADDR=127.0.0.1:6391 go test -run '^$' -bench PutParallel -benchmem ./store/redis/
//
// Besides ns/op it reports the CPU that one call costs each side: this
// process (client-µs/op: go-redis's write, wait and read, and the
// kernel's loopback work done on its behalf) and redis-server
// (redis-µs/op, from INFO cpu). Those two move less with the machine's
// load than ns/op does. (Issue 13: go-redis's automatic pipelining was
// measured with it; see the comment in Open.)

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

func BenchmarkPutParallel(b *testing.B) {
	st := redistest.New(b)
	val := []byte(`{"client_id":"bench-client","scope":"read write","exp":1767225600}`)
	// 1 and 8 goroutines per GOMAXPROCS: 2 and 16 callers on two cores,
	// the second as many as the endpoint benchmark's clients.
	for _, par := range []int{1, 8} {
		b.Run("callers-per-cpu="+strconv.Itoa(par), func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(par)
			r0, c0 := redisCPU(b, st.Client()), processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := store.FailFast(context.Background())
				for pb.Next() {
					k := "tok-" + strconv.FormatInt(n.Add(1)%4096, 10)
					if err := st.Put(ctx, "bench", k, val, time.Minute); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			r1, c1 := redisCPU(b, st.Client()), processCPU(b)
			b.ReportMetric((c1-c0).Seconds()*1e6/float64(b.N), "client-µs/op")
			b.ReportMetric((r1-r0).Seconds()*1e6/float64(b.N), "redis-µs/op")
		})
	}
}

// redisCPU is redis-server's user and system CPU so far (INFO cpu).
func redisCPU(b *testing.B, c goredis.UniversalClient) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, field := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, field); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO cpu %s%q: %v", field, v, err)
				}
				sum += f
				found++
			}
		}
	}
	if found != 2 {
		b.Fatalf("INFO cpu without used_cpu_user and used_cpu_sys:\n%s", info)
	}
	return time.Duration(sum * float64(time.Second))
}

// processCPU is this process's user and system CPU so far.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
